// Comparing plain JSON-ish values (inputs, states) structurally. Its own module
// so that the field tables (fields.ts) and the kind contract (resource.ts) can
// both use it without importing each other.

/** Compare two plain JSON-ish values structurally (key order does not matter). */
export function sameValue(a: unknown, b: unknown): boolean {
    return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === "object") {
        return Object.fromEntries(
            Object.keys(v as object)
                .sort()
                .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
        );
    }
    return v;
}
