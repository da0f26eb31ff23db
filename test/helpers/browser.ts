// A real browser for the tests: Debian's Chromium (package `chromium`, installed by
// lab/setup.sh from lab/host-packages.txt), headless, driven by puppeteer-core over
// a pipe (no port opened, no browser downloaded). Every request a page makes is
// recorded, and only file:// requests are let through: a page that tries to fetch
// anything from a network shows up in `requests` and gets nothing.
import * as fs from "fs";
import * as path from "path";
import puppeteer, { Browser, Page } from "puppeteer-core";

/** The browser binary: $CHROMIUM, else Debian's (its wrapper script is skipped: it only adds flags for desktops). */
export function chromiumPath(): string {
    const candidates = [process.env.CHROMIUM, "/usr/lib/chromium/chromium", "/usr/bin/chromium"].filter((c): c is string => !!c);
    const found = candidates.find((c) => fs.existsSync(c));
    if (!found) throw new Error(`no Chromium at ${candidates.join(" or ")}: install Debian's package \`chromium\` (lab/setup.sh does, from lab/host-packages.txt)`);
    return found;
}

export interface OpenedPage {
    page: Page;
    /** Every URL the page asked for, the document included. */
    requests: string[];
    /** Console messages of type error, and uncaught exceptions. */
    errors: string[];
}

export class TestBrowser {
    private constructor(private readonly browser: Browser) {}

    static async launch(): Promise<TestBrowser> {
        const browser = await puppeteer.launch({
            executablePath: chromiumPath(),
            pipe: true,
            headless: true,
            // --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
            args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking", "--disable-component-update"],
        });
        return new TestBrowser(browser);
    }

    /** Opens a file in a new page of the given viewport, recording requests and errors. */
    async open(file: string, viewport = { width: 1600, height: 1000 }): Promise<OpenedPage> {
        const page = await this.browser.newPage();
        await page.setViewport(viewport);
        const requests: string[] = [];
        const errors: string[] = [];
        await page.setRequestInterception(true);
        page.on("request", (req) => {
            requests.push(req.url());
            if (req.url().startsWith("file:")) void req.continue();
            else void req.abort();
        });
        page.on("console", (msg) => {
            if (msg.type() === "error") errors.push(msg.text());
        });
        page.on("pageerror", (err) => errors.push(String(err)));
        await page.goto(`file://${path.resolve(file)}`, { waitUntil: "load" });
        return { page, requests, errors };
    }

    async close(): Promise<void> {
        await this.browser.close();
    }
}
