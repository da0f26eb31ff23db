// The one place where a shell command line is built. SSH carries a single string
// to the remote shell, so an argv must be turned into text; every argument is
// quoted with POSIX single quotes, which the shell takes literally, byte for byte.
// Nothing else in the host layer concatenates shell text.
import { display, MaybeSecret, reveal } from "./redact";

/** POSIX single-quote quoting: 'it'\''s' — safe for every byte except NUL. */
export function quote(arg: string): string {
    if (arg.includes("\0")) {
        // A NUL ends a C string: the remote process would see a shorter argument than intended.
        throw new Error("an argument for a remote command contains a NUL byte, which no remote process can receive");
    }
    if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
    return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The command line the remote shell runs: the real bytes, secrets included. */
export function commandLine(argv: readonly MaybeSecret[]): string {
    if (argv.length === 0) throw new Error("a remote command needs at least a program name");
    return argv.map((a) => quote(reveal(a))).join(" ");
}

/** The same command line for logs and previews: secrets shown as [secret]. */
export function displayCommandLine(argv: readonly MaybeSecret[]): string {
    return argv.map((a) => quote(display(a))).join(" ");
}
