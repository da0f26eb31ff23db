// The shell side of the read-only host (readOnly.ts): the simple commands of a
// constant `sh -c` script, found by a small lexer, so that every program the
// script runs, and every file it redirects into, can be checked before the
// script is sent. It understands the shell the project's read scripts are
// written in (commands, pipes, && || ;, if/for/while, functions, $(...) and
// quotes) and refuses what it does not understand (backquotes, here-documents,
// case, eval, source, a command named by a variable): a script it cannot read is
// a script it cannot vouch for.

/** One simple command of a script: its words and where its output goes. */
export interface SimpleCommand {
    /** The words, assignments and keywords removed; `literal` is false when a word holds an expansion. */
    words: { text: string; literal: boolean }[];
    /** Targets of output redirections (`>`, `>>`, `>|`, `&>`), as written. */
    outputs: string[];
}

/** The script cannot be analysed; `why` says which construct. */
export class UnreadableScript extends Error {}

type Token = { kind: "word"; text: string; literal: boolean } | { kind: "op"; text: string } | { kind: "redir"; text: string; target: string };

const keywords = new Set(["if", "then", "elif", "else", "fi", "do", "done", "while", "until", "!", "{", "}"]);
const assignment = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** Every simple command of `script`, those inside $(...) included. */
export function simpleCommands(script: string): SimpleCommand[] {
    const found: SimpleCommand[] = [];
    const functions = new Set<string>();
    const lexer = new Lexer(script, 0, false, found, functions);
    collect(lexer.all(), found, functions);
    // A call of a function the script defines runs the function's body, checked already.
    return found.filter((c) => !(c.words.length > 0 && functions.has(c.words[0].text) && c.words[0].literal));
}

/** Splits a token list into simple commands (nested substitutions were collected by the lexer). */
function collect(tokens: Token[], found: SimpleCommand[], functions: Set<string>): void {
    let current: SimpleCommand = { words: [], outputs: [] };
    let skipFor = false;
    const flush = () => {
        if (current.words.length > 0 || current.outputs.length > 0) found.push(current);
        current = { words: [], outputs: [] };
    };
    for (let i = 0; i < tokens.length; i++) {
        const t = tokens[i];
        if (t.kind === "op") {
            // `name() {`: a function definition; its body follows as ordinary commands.
            if (t.text === "(" && tokens[i + 1]?.kind === "op" && (tokens[i + 1] as { text: string }).text === ")" && current.words.length === 1) {
                functions.add(current.words[0].text);
                current = { words: [], outputs: [] };
                i++;
                continue;
            }
            if (t.text === "(" || t.text === ")") throw new UnreadableScript("a subshell ( ... )");
            flush();
            skipFor = false;
            continue;
        }
        if (t.kind === "redir") {
            if (/^(\d*>|>>|>\||&>|\d*>>)$/.test(t.text)) current.outputs.push(t.target);
            continue;
        }
        if (skipFor) continue;
        if (current.words.length === 0) {
            if (t.literal && keywords.has(t.text)) continue;
            if (t.literal && t.text === "for") {
                // `for NAME in WORDS; do`: nothing here runs until `do`.
                skipFor = true;
                continue;
            }
            if (t.literal && (t.text === "case" || t.text === "esac")) throw new UnreadableScript("a case statement");
            if (assignment.test(t.text)) continue;
        }
        current.words.push({ text: t.text, literal: t.literal });
    }
    flush();
}

class Lexer {
    private i: number;

    /**
     * Lexes `s` from `start`; with `inSubstitution`, up to the `)` that closes the
     * `$(` before `start` (where the substitution's own quoting context ends).
     */
    constructor(
        private readonly s: string,
        start: number,
        private readonly inSubstitution: boolean,
        private readonly found: SimpleCommand[],
        private readonly functions: Set<string>,
    ) {
        this.i = start;
    }

    /** Where lexing stopped: the index of the closing `)` of a substitution. */
    get end(): number {
        return this.i;
    }

    all(): Token[] {
        const out: Token[] = [];
        let depth = 0;
        for (;;) {
            const t = this.next();
            if (!t) {
                if (this.inSubstitution) throw new UnreadableScript("an unterminated $(");
                return out;
            }
            if (t.kind === "op" && t.text === "(") depth++;
            if (t.kind === "op" && t.text === ")" && depth-- === 0 && this.inSubstitution) {
                this.i--;
                return out;
            }
            out.push(t);
        }
    }

    private next(): Token | undefined {
        const s = this.s;
        while (this.i < s.length) {
            const c = s[this.i];
            if (c === " " || c === "\t") this.i++;
            else if (c === "\\" && s[this.i + 1] === "\n") this.i += 2;
            else if (c === "#") while (this.i < s.length && s[this.i] !== "\n") this.i++;
            else break;
        }
        if (this.i >= s.length) return undefined;
        const c = s[this.i];
        const two = s.slice(this.i, this.i + 2);
        if (c === "\n" || c === ";") {
            if (two === ";;") throw new UnreadableScript("a case statement");
            this.i++;
            return { kind: "op", text: ";" };
        }
        if (two === "&&" || two === "||") {
            this.i += 2;
            return { kind: "op", text: two };
        }
        if (c === "|" || c === "&") {
            if (c === "&" && s[this.i + 1] === ">") return this.redirection("&>");
            this.i++;
            return { kind: "op", text: c };
        }
        if (c === "(" || c === ")") {
            this.i++;
            return { kind: "op", text: c };
        }
        const redir = /^(\d*)(>>|>\||>&|<<|<&|<>|>|<)/.exec(s.slice(this.i));
        if (redir) return this.redirection(redir[0]);
        return this.word();
    }

    private redirection(op: string): Token {
        this.i += op.length;
        if (op.endsWith("<<")) throw new UnreadableScript("a here-document");
        if (op.endsWith("<>")) throw new UnreadableScript("a read-write redirection (<>)");
        const target = this.word();
        // `2>&1`, `>&2`: a duplicate of a descriptor, not a file.
        const dup = op.endsWith(">&") || op.endsWith("<&");
        const text = dup ? op.slice(0, -1) : op;
        if (dup && !/^(\d+|-)$/.test(target.text)) throw new UnreadableScript(`a redirection to ${target.text}`);
        return { kind: "redir", text: op.endsWith("<&") || op === "<" || /^\d*<$/.test(op) ? "<" : text, target: dup ? `&${target.text}` : target.text };
    }

    /** A word: runs of plain text, quotes and expansions up to an unquoted blank or operator. */
    private word(): { kind: "word"; text: string; literal: boolean } {
        const s = this.s;
        let text = "";
        let literal = true;
        while (this.i < s.length) {
            const c = s[this.i];
            if (" \t\n;&|()<>".includes(c)) break;
            if (c === "`") throw new UnreadableScript("a backquoted command substitution");
            if (c === "\\") {
                text += s[this.i + 1] ?? "";
                this.i += 2;
            } else if (c === "'") {
                const end = s.indexOf("'", this.i + 1);
                if (end < 0) throw new UnreadableScript("an unterminated quote");
                text += s.slice(this.i + 1, end);
                this.i = end + 1;
            } else if (c === '"') {
                this.i++;
                while (this.i < s.length && s[this.i] !== '"') {
                    if (s[this.i] === "\\") {
                        text += s[this.i + 1] ?? "";
                        this.i += 2;
                    } else if (s[this.i] === "`") {
                        throw new UnreadableScript("a backquoted command substitution");
                    } else if (s[this.i] === "$") {
                        literal = false;
                        text += this.expansion();
                    } else {
                        text += s[this.i++];
                    }
                }
                if (this.i >= s.length) throw new UnreadableScript("an unterminated quote");
                this.i++;
            } else if (c === "$") {
                literal = false;
                text += this.expansion();
            } else {
                text += c;
                this.i++;
            }
        }
        return { kind: "word", text, literal };
    }

    /** `$name`, `${...}`, `$((...))` or `$(...)`; the commands of a substitution are collected. */
    private expansion(): string {
        const s = this.s;
        const start = this.i;
        if (s.startsWith("$((", this.i)) {
            this.i = this.matching(this.i + 1, "(", ")") + 1;
            this.nested(s.slice(start + 3, this.i - 2));
        } else if (s.startsWith("$(", this.i)) {
            const sub = new Lexer(s, this.i + 2, true, this.found, this.functions);
            collect(sub.all(), this.found, this.functions);
            this.i = sub.end + 1;
        } else if (s.startsWith("${", this.i)) {
            const end = this.matching(this.i + 1, "{", "}");
            this.i = end + 1;
            this.nested(s.slice(start + 2, end));
        } else {
            this.i++;
            const m = /^([A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])/.exec(s.slice(this.i));
            this.i += m ? m[0].length : 0;
        }
        return s.slice(start, this.i);
    }

    /** Arithmetic and ${...} run no command unless they hold a substitution: look inside for one. */
    private nested(text: string): void {
        if (text.includes("`")) throw new UnreadableScript("a backquoted command substitution");
        const at = text.indexOf("$(");
        if (at < 0) return;
        const sub = new Lexer(text.slice(at), 0, false, this.found, this.functions);
        collect(sub.all(), this.found, this.functions);
    }

    /** Index of the bracket closing the one at `open`, skipping quotes and nested pairs. */
    private matching(open: number, left: string, right: string): number {
        const s = this.s;
        let depth = 0;
        for (let k = open; k < s.length; k++) {
            const c = s[k];
            if (c === "\\") k++;
            else if (c === "'") {
                const end = s.indexOf("'", k + 1);
                if (end < 0) break;
                k = end;
            } else if (c === left) depth++;
            else if (c === right && --depth === 0) return k;
        }
        throw new UnreadableScript(`an unterminated ${left}`);
    }
}
