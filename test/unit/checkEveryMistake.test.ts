// Every mistake reported once, and nothing else: for every input field of every kind
// (the hostile-input table, test/host/hostileCases.ts), each invalid value put into an
// otherwise valid input must give failures that all name that field, never a
// follow-on error on another field (a member `sdb` must not also give "raid1 needs at
// least 2 members, got 0"). And mistakes in several fields at once are all reported
// in one check: one failure (or more) per field, none missing.
import * as assert from "assert";
import { kinds, providerFor } from "../../provider";
import { casesFor, HostileCase, hostileTables } from "../host/hostileCases";
import { baselines, Json } from "./checkBaselines";

type Segment = string | number;

// ---- paths (`disks[].nbd.host`, `profiles.*.kernel.url`) -------------------------------------

function formatPath(p: Segment[]): string {
    return p.map((s, i) => (typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");
}

function getAt(root: unknown, p: Segment[]): unknown {
    return p.reduce<unknown>((v, s) => (v === undefined || v === null ? undefined : (v as Record<string | number, unknown>)[s]), root);
}

function setAt(root: unknown, p: Segment[], value: unknown): Json {
    const copy = structuredClone(root) as Record<string | number, unknown>;
    (getAt(copy, p.slice(0, -1)) as Record<string | number, unknown>)[p[p.length - 1]] = value;
    return copy as Json;
}

/** The first concrete path in one of the baselines where `pattern` has a value. */
function place(all: Json[], pattern: string): { baseline: Json; at: Segment[] } | undefined {
    const tokens = pattern.match(/\[\]|[^.[\]]+/g) ?? [];
    for (const baseline of all) {
        let at: Segment[] = [];
        for (const t of tokens) {
            const v = getAt(baseline, at);
            if (t === "[]") at = Array.isArray(v) && v.length > 0 ? [...at, 0] : [];
            else if (t === "*") at = v && typeof v === "object" && Object.keys(v).length > 0 ? [...at, Object.keys(v)[0]] : [];
            else at = [...at, t];
            if (at.length === 0) break;
        }
        if (at.length > 0 && getAt(baseline, at) !== undefined) return { baseline, at };
    }
    return undefined;
}

/** A failure names `field` when its text starts with it (or with a path inside it). */
function names(failure: string, field: string): boolean {
    return failure.startsWith(field) && /^[:.[ ]/.test(failure.slice(field.length));
}

/** The failures of check, on create (no olds) or on update (olds: what an earlier check made of `olds`). */
function failuresOf(kind: string, news: Json, olds?: Json): string[] {
    const k = kinds[kind as keyof typeof kinds];
    const before = olds ? ((k.check({}, olds).inputs ?? {}) as Json) : {};
    return k.check(before, news).failures.map((f) => `${f.field}: ${f.reason}`);
}

/** The case's input: the value put at the field (or, for a map's keys, a new key). */
function withCase(baseline: Json, at: Segment[], c: HostileCase): Json {
    if (c.mode !== "key") return setAt(baseline, at, c.value);
    const map = getAt(baseline, at) as Json;
    return setAt(baseline, at, { ...map, [c.value as string]: structuredClone(Object.values(map)[0] ?? "x") });
}

describe("check: every mistake reported once, no follow-on error on another field", function () {
    this.timeout(120_000);
    const figures: string[] = [];
    after(() => console.log(`      ${figures.join("\n      ")}`));

    for (const kind of Object.keys(kinds)) {
        const table = hostileTables[kind];
        it(`${kind}: one invalid field gives failures that all name that field`, () => {
            const all = baselines(kind);
            for (const b of all) assert.deepStrictEqual(failuresOf(kind, b), [], `${kind} baseline is rejected`);
            const problems: string[] = [];
            let cases = 0;
            for (const [pattern, spec] of Object.entries(table)) {
                const placed = place(all, pattern);
                if (!placed) continue;
                for (const c of casesFor(spec, getAt(placed.baseline, placed.at)).filter((x) => x.expect === "reject")) {
                    const field = c.names ? formatPath([...placed.at.slice(0, -1), c.names]) : formatPath(placed.at);
                    const news = withCase(placed.baseline, placed.at, c);
                    // On create, and on update of the valid baseline (where refusals of a change join in).
                    const f = [...failuresOf(kind, news), ...failuresOf(kind, news, placed.baseline)];
                    cases++;
                    const others = f.filter((x) => !names(x, field));
                    // (Whether each value is rejected at all is the hostile-input suite's question.)
                    if (others.length > 0) problems.push(`${field} = ${c.label}: also ${others.map((x) => x.slice(0, 140)).join(" | ")}`);
                }
            }
            figures.push(`${kind}: ${cases} single mistakes, ${problems.length} with a follow-on error`);
            assert.ok(cases > 20, `only ${cases} cases for ${kind}`);
            assert.deepStrictEqual(problems, []);
        });

        it(`${kind}: mistakes in several fields are all reported in one check`, () => {
            const all = baselines(kind);
            // One wrong-type value per top-level field that has one, all at once.
            let news = structuredClone(all[0]);
            const broken: string[] = [];
            for (const [pattern, spec] of Object.entries(table)) {
                if (/[.[]/.test(pattern) || spec.type === "derived") continue;
                const placed = place([news], pattern);
                const c = placed && casesFor(spec, getAt(news, placed.at)).find((x) => x.expect === "reject" && x.mode !== "key" && !x.names && x.value !== undefined && x.value !== null && x.value !== "");
                if (!placed || !c) continue;
                news = withCase(news, placed.at, c);
                broken.push(pattern);
            }
            const f = failuresOf(kind, news);
            const missing = broken.filter((field) => !f.some((x) => names(x, field)));
            assert.ok(broken.length >= 3, `only ${broken.length} fields broken`);
            assert.deepStrictEqual(missing, [], `not reported: ${missing.join(", ")}\ngot:\n${f.join("\n")}`);
        });
    }

    it("the issue's own examples: a member without /dev/ and an address without its prefix give one error each", () => {
        const raid = failuresOf("RaidArray", { ...baselines("RaidArray")[0], members: ["sdb", "/dev/sdc"] });
        assert.deepStrictEqual(raid, ['members[0]: "sdb" is not a /dev path like /dev/vdb or /dev/disk/by-id/...']);
        const lxc = baselines("LxcContainer")[0];
        const f = failuresOf("LxcContainer", { ...lxc, network: [{ bridge: "br-lan", ipv4: "198.51.100.50", gateway: "198.51.100.1" }] });
        assert.deepStrictEqual(f, ['network[0].ipv4: "198.51.100.50" is not an IPv4 address with prefix length like 198.18.1.50/24']);
    });

    it("a rule across fields still fires when both fields are valid (the guard above is not a switch-off)", () => {
        assert.deepStrictEqual(failuresOf("RaidArray", { ...baselines("RaidArray")[0], members: ["/dev/sdb"] }), ["members: raid1 needs at least 2 members, got 1"]);
        const lxc = baselines("LxcContainer")[0];
        assert.deepStrictEqual(failuresOf("LxcContainer", { ...lxc, network: [{ bridge: "br-lan", gateway: "198.51.100.1" }] }), ["network[0].gateway: needs ipv4 as well"]);
    });
});

// The provider object the engine calls reports the same list (one failure per line, field first).
describe("check through the provider the engine calls", () => {
    it("returns every failure of a resource, each naming its field", async () => {
        const news = { ...baselines("KvmGuest")[0], memoryMiB: "512MiB", nics: [{ bridge: "br lan", mac: "01:00:5e:00:00:01" }], boot: "floppy" };
        const out = await providerFor("KvmGuest").check!({}, news);
        const reasons = (out.failures ?? []).map((f) => f.reason);
        assert.strictEqual(reasons.length, 4, reasons.join("\n"));
        for (const field of ["memoryMiB:", "nics[0].bridge:", "nics[0].mac:", "boot:"]) assert.ok(reasons.some((r) => r.startsWith(field)), `${field} missing in ${reasons.join(" | ")}`);
    });
});
