// The output of a read script that prints several things in one SSH command,
// each after a header line `==name==` (`echo ==config==; cat "$conf"`). Every
// kind's read and probe scripts use this shape; this is its one parser.
//
// Headers are looked for in the order the script prints them, each after the
// previous one, so a line inside a part (a file's content) that looks like a
// header ends nothing unless it is the next expected header.

/** The parts of a script's output, by header name. */
export interface Sections<N extends string> {
    /** What came before the first header (e.g. a report the script printed first). */
    preamble: string;
    /**
     * Each part's text: the bytes between its header line and the next header
     * found (the last part runs to the end). Absent when its header was not printed.
     */
    parts: Partial<Record<N, string>>;
}

/**
 * Splits `text` at the headers `==name==` of `names`, given in the order the
 * script prints them. A header missing from the output (an older script, an
 * early exit) leaves its part absent; the parts around it are still found.
 */
export function parseSections<N extends string>(text: string, names: readonly N[]): Sections<N> {
    const found: { name: N; start: number; body: number }[] = [];
    let from = 0;
    for (const name of names) {
        const at = findHeader(text, name, from);
        if (at === undefined) continue;
        found.push({ name, ...at });
        from = at.body;
    }
    const parts: Partial<Record<N, string>> = {};
    found.forEach((f, i) => {
        parts[f.name] = text.slice(f.body, i + 1 < found.length ? found[i + 1].start : text.length);
    });
    return { preamble: text.slice(0, found.length > 0 ? found[0].start : text.length), parts };
}

/** The part `name`, or an error saying which script left it out. */
export function requirePart<N extends string>(sections: Sections<N>, name: N, script: string): string {
    const part = sections.parts[name];
    if (part === undefined) throw new Error(`the ${script} printed no ${name} section`);
    return part;
}

/** Where the header `==name==` (followed by a newline or the end) starts, and where its part begins. */
function findHeader(text: string, name: string, from: number): { start: number; body: number } | undefined {
    const header = `==${name}==`;
    for (let at = text.indexOf(header, from); at >= 0; at = text.indexOf(header, at + 1)) {
        const end = at + header.length;
        if (end === text.length) return { start: at, body: end };
        if (text[end] === "\n") return { start: at, body: end + 1 };
    }
    return undefined;
}
