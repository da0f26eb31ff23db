import * as assert from "assert";
import { commandLine, displayCommandLine, quote } from "../../provider/host/quote";
import { Secret } from "../../provider/host/redact";

/**
 * A POSIX shell's reading of a line made only of words that are bare or
 * single-quoted, joined by single spaces: what `sh` does with commandLine().
 * Written from the POSIX rules, independent of quote().
 */
function shellWords(line: string): string[] {
    const words: string[] = [];
    let cur = "";
    let inWord = false;
    for (let i = 0; i < line.length; i++) {
        const ch = line[i];
        if (ch === "'") {
            const end = line.indexOf("'", i + 1);
            assert.ok(end > i, `unterminated quote in ${line}`);
            cur += line.slice(i + 1, end);
            i = end;
            inWord = true;
        } else if (ch === "\\") {
            cur += line[++i];
            inWord = true;
        } else if (ch === " ") {
            if (inWord) words.push(cur);
            cur = "";
            inWord = false;
        } else {
            assert.match(ch, /[A-Za-z0-9_@%+=:,./-]/, `unquoted special character ${JSON.stringify(ch)} in ${line}`);
            cur += ch;
            inWord = true;
        }
    }
    if (inWord) words.push(cur);
    return words;
}

const hostile = [
    "it's",
    '"double"',
    "$(touch /tmp/pwned)",
    "`id`",
    "; rm -rf /",
    "a\nb",
    "tab\there",
    "ünïcödé ✓ 日本語",
    "-rf",
    "--help",
    "",
    " leading space",
    "*",
    "~root",
    "$HOME",
    "back\\slash",
    "!event",
    "#comment",
    "a && b || c | d > e < f &",
    "'",
    "''",
    "'\\''",
];

describe("host quoting", () => {
    it("leaves plain words bare and single-quotes everything else", () => {
        assert.strictEqual(quote("/etc/mdadm.conf"), "/etc/mdadm.conf");
        assert.strictEqual(quote("--level=1"), "--level=1");
        assert.strictEqual(quote("it's"), `'it'\\''s'`);
        assert.strictEqual(quote(""), "''");
        assert.strictEqual(quote("$(reboot)"), "'$(reboot)'");
        assert.strictEqual(quote("a b"), "'a b'");
    });

    for (const s of hostile) {
        it(`a shell reads ${JSON.stringify(s)} back as exactly one argument`, () => {
            assert.deepStrictEqual(shellWords(commandLine(["printf", s])), ["printf", s]);
        });
    }

    it("round-trips every printable ASCII character and random unicode", () => {
        let seed = 42;
        const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
        for (let i = 0; i < 500; i++) {
            const s = Array.from({ length: rnd(20) }, () => (rnd(5) === 0 ? String.fromCodePoint(0x80 + rnd(0x2000)) : String.fromCharCode(1 + rnd(126)))).join("");
            assert.deepStrictEqual(shellWords(commandLine(["x", s])), ["x", s]);
        }
    });

    it("refuses a NUL byte instead of silently truncating the argument", () => {
        assert.throws(() => commandLine(["echo", "a\0b"]), /NUL/);
    });

    it("refuses an empty argv", () => {
        assert.throws(() => commandLine([]), /program/);
    });

    it("puts the secret's bytes on the wire but [secret] in the display form", () => {
        const argv = ["mysql", "-p", new Secret("s3cr3t pass")];
        assert.strictEqual(commandLine(argv), "mysql -p 's3cr3t pass'");
        assert.strictEqual(displayCommandLine(argv), "mysql -p '[secret]'");
    });
});
