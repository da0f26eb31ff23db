// Alpine apkovl overlays built here, as bytes: a gzipped ustar archive of
// etc/... that Alpine's initramfs unpacks over its tmpfs root at boot (apkovl=URL).
// Built in the provider rather than on the box so that the same inputs always give
// the same bytes (fixed mtime, owner, order): a re-run finds the file unchanged,
// and a test can read the archive without a host.
import { gzipSync } from "zlib";

/** Relative path (e.g. `etc/hostname`) to file content. */
export type OverlayFiles = Record<string, string>;

/** Paths a tar header's 100-byte name field holds; longer ones are refused in `check`. */
export const maxOverlayPath = 99;

/** Fixed mtime (2000-01-01): the archive must not change when its content does not. */
const fixedMtime = 946684800;

/** A gzipped tar of the files, with a directory entry for every parent. */
export function buildApkovl(files: OverlayFiles): Buffer {
    const dirs = new Set<string>();
    for (const p of Object.keys(files)) {
        const parts = p.split("/");
        for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/") + "/");
    }
    const blocks: Buffer[] = [];
    for (const d of [...dirs].sort()) blocks.push(header(d, 0, "5", 0o755));
    for (const p of Object.keys(files).sort()) {
        const body = Buffer.from(files[p], "utf8");
        blocks.push(header(p, body.length, "0", executable(p) ? 0o755 : 0o644), pad(body));
    }
    blocks.push(Buffer.alloc(1024));
    // level 9 and no name/mtime in the gzip header: deterministic bytes
    return gzipSync(Buffer.concat(blocks), { level: 9 });
}

/** Scripts Alpine runs (local.d, init.d) must stay executable. */
function executable(p: string): boolean {
    return /^etc\/(local\.d|init\.d|periodic)\//.test(p) || /\.(start|stop|sh)$/.test(p);
}

function header(name: string, size: number, type: "0" | "5", mode: number): Buffer {
    if (Buffer.byteLength(name) > maxOverlayPath + 1) throw new Error(`overlay path ${name} is too long for a tar header`);
    const h = Buffer.alloc(512);
    h.write(name, 0, 100, "utf8");
    octal(h, 100, 8, mode);
    octal(h, 108, 8, 0);
    octal(h, 116, 8, 0);
    octal(h, 124, 12, size);
    octal(h, 136, 12, fixedMtime);
    h.fill(" ", 148, 156);
    h.write(type, 156, 1, "ascii");
    h.write("ustar\u000000", 257, 8, "ascii");
    h.write("root", 265, 32, "ascii");
    h.write("root", 297, 32, "ascii");
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, "0") + "\u0000 ", 148, 8, "ascii");
    return h;
}

function octal(h: Buffer, offset: number, length: number, value: number): void {
    h.write(value.toString(8).padStart(length - 1, "0") + "\u0000", offset, length, "ascii");
}

function pad(body: Buffer): Buffer {
    const rest = body.length % 512;
    return rest === 0 ? body : Buffer.concat([body, Buffer.alloc(512 - rest)]);
}
