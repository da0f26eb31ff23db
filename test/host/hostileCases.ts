// The hostile-input table: for every input field of every resource kind (paths as
// test/host/inputFields.ts spells them), the values an attacker, a typo or a
// confused program could send, and what `check` must do with each:
//   reject — fail with the field named (the default for anything hostile);
//   accept — the field is free data (a K/V value, a file's content, a password,
//            a command word) that never reaches a shell unquoted: kept verbatim;
//   ignore — a field derived by check: a value sent by the user is not used.
// Families of values are built per field type from the field's valid value in a
// baseline, so each case differs from a passing input in that one field only.

export type Expect = "reject" | "accept" | "ignore";

export interface HostileCase {
    label: string;
    value: unknown;
    expect: Expect;
    /** `key`: add a map entry whose KEY is the value (the map's own keys are input too). */
    mode?: "value" | "key";
    /** The value is a secret: no message may repeat it, even in part. */
    secret?: boolean;
    /** A sibling field the message must name instead (e.g. a wrong passphrase fails on the key it does not open). */
    names?: string;
}

/** How a field is validated, which decides its family of hostile values. */
export type FieldType =
    | "name" // identifiers, enums, device and interface names: nothing but the pattern
    | "path" // absolute paths on a host
    | "localPath" // an absolute path on the machine running Pulumi (never reaches a remote shell)
    | "relkey" // Consul K/V paths and overlay paths: relative, no . or ..
    | "host" // DNS name or IP address
    | "hostPort" // host:port
    | "ipv4"
    | "cidr" // a network: host bits zero
    | "ipCidr" // an address with a prefix length
    | "ipOrNet" // an address or a network
    | "mac"
    | "url"
    | "sha256"
    | "size" // 256MiB
    | "int"
    | "number" // a real number (a CRUSH weight)
    | "bool"
    | "secret" // passwords, passphrases: any text is data, never echoed
    | "token" // Consul ACL tokens: a pattern, never echoed
    | "privateKey"
    | "staticKey" // OpenVPN static key
    | "hostKey"
    | "text" // free data (K/V values, file content)
    | "word" // one command word (argv): metacharacters are data, quoted by the host layer
    | "object"
    | "list"
    | "map"
    | "derived";

export interface FieldSpec {
    type: FieldType;
    required?: boolean;
    /** Longest value check accepts (text and secrets): the oversize case goes past it. */
    maxLength?: number;
    /** Extra cases for this field only. */
    cases?: HostileCase[];
    /** Labels of generated cases that do not apply to this field, each with the reason. */
    skip?: Record<string, string>;
}

export type KindTable = Record<string, FieldSpec>;

const oversize = 100 * 1024;
const big = (ok: string): string => `${ok}${"a".repeat(oversize)}`;
/** A canary inside secret hostile values: it must never show up in a message. */
export const secretCanary = "CANARY-s3cr3t-7f1e";

/** Cyrillic and full-width look-alikes of ASCII characters. */
const lookAlike: Record<string, string> = {
    a: "\u0430", e: "\u0435", o: "\u043e", c: "\u0441", p: "\u0440", x: "\u0445", y: "\u0443", i: "\u0456", s: "\u0455",
    d: "\u0501", b: "\u044c", m: "\u043c", v: "\u03bd", n: "\u0578", r: "\u0433", t: "\u0442", l: "\u04cf", g: "\u0261",
    h: "\u04bb", w: "\u051d", k: "\u043a", u: "\u057d", f: "\u0192", j: "\u0458", q: "\u051b", z: "\u1d22",
    ":": "\uff1a", ".": "\uff0e", "/": "\u2215", "-": "\u2010", "0": "\uff10", "1": "\uff11", "2": "\uff12", "5": "\uff15", "9": "\uff19",
};

function withLookAlike(ok: string): string {
    const i = [...ok].findIndex((ch) => lookAlike[ch.toLowerCase()] !== undefined);
    if (i < 0) return `\u0430${ok}`;
    const chars = [...ok];
    chars[i] = lookAlike[chars[i].toLowerCase()];
    return chars.join("");
}

const reject = (label: string, value: unknown, extra: Partial<HostileCase> = {}): HostileCase => ({ label, value, expect: "reject", ...extra });
const accept = (label: string, value: unknown, extra: Partial<HostileCase> = {}): HostileCase => ({ label, value, expect: "accept", ...extra });

function shellMeta(ok: string, expect: Expect): HostileCase[] {
    return [
        { label: "semicolon", value: `${ok}; rm -rf /`, expect },
        { label: "command substitution", value: `${ok}$(id)`, expect },
        { label: "backticks", value: `${ok}\`id\``, expect },
        { label: "variable", value: `${ok}$HOME`, expect },
        { label: "pipe", value: `${ok}|id`, expect },
        { label: "and-list", value: `${ok}&&id`, expect },
        { label: "redirect", value: `${ok}>/etc/passwd`, expect },
        { label: "quotes", value: `${ok}'"`, expect },
        { label: "space and option", value: `${ok} --force`, expect },
    ];
}

function controls(ok: string, expect: Expect): HostileCase[] {
    return [
        { label: "newline", value: `${ok}\nid`, expect },
        { label: "carriage return", value: `${ok}\rid`, expect },
        { label: "NUL", value: `${ok}\u0000id`, expect },
        { label: "escape sequence", value: `${ok}\u001b[2J`, expect },
    ];
}

function unicode(ok: string, expect: Expect): HostileCase[] {
    return [
        { label: "look-alike letter", value: withLookAlike(ok), expect },
        { label: "right-to-left override", value: `\u202e${ok}`, expect },
        { label: "zero-width space", value: `${ok}\u200b`, expect },
    ];
}

function wrongTypes(ok: unknown, expectArray: Expect = "reject"): HostileCase[] {
    return [
        reject("a number", 42),
        reject("a boolean", true),
        reject("an object", { value: ok }),
        { label: "a list", value: [ok], expect: expectArray },
    ];
}

function required(spec: FieldSpec): HostileCase[] {
    return spec.required ? [reject("empty string", ""), reject("null", null)] : [];
}

/** The generated cases of one field, from its valid value `ok`. */
export function casesFor(spec: FieldSpec, ok: unknown): HostileCase[] {
    const s = typeof ok === "string" ? ok : "x";
    const all = generated(spec, s, ok).concat(spec.cases ?? []);
    const skip = spec.skip ?? {};
    const unknownSkips = Object.keys(skip).filter((l) => !all.some((c) => c.label === l));
    if (unknownSkips.length > 0) throw new Error(`skip names cases that do not exist: ${unknownSkips.join(", ")}`);
    return all.filter((c) => skip[c.label] === undefined);
}

function generated(spec: FieldSpec, s: string, ok: unknown): HostileCase[] {
    switch (spec.type) {
        case "name":
            return [
                ...shellMeta(s, "reject"), ...controls(s, "reject"), ...unicode(s, "reject"), ...wrongTypes(ok), ...required(spec),
                reject("path traversal", "../../etc/shadow"), reject("leading dash (an option)", `-${s}`), reject("100 KB", big(s)),
            ];
        case "path":
            return [
                ...shellMeta(s, "reject"), ...controls(s, "reject"), ...unicode(s, "reject"), ...wrongTypes(ok), ...required(spec),
                reject("path traversal", `${s}/../../etc/shadow`), reject("relative path traversal", "../../etc/shadow"),
                reject("relative path", s.replace(/^\/+/, "")), reject("100 KB", big(s)),
            ];
        case "localPath":
            // Handed to the ssh2 client as a socket path on this machine: no shell
            // ever sees it, so metacharacters are only unusual bytes in a file name.
            return [
                ...controls(s, "reject"), ...wrongTypes(ok), ...required(spec),
                accept("semicolon (a file name byte here)", `${s}; rm -rf /`),
                reject("relative path", s.replace(/^\/+/, "")), reject("100 KB", big(s)),
            ];
        case "relkey":
            return [
                ...shellMeta(s, "reject"), ...controls(s, "reject"), ...unicode(s, "reject"), ...wrongTypes(ok), ...required(spec),
                reject("path traversal", `${s.replace(/\/$/, "")}/../../etc/shadow`), reject("leading ..", "../../etc/shadow"),
                reject("absolute", `/${s}`), reject("100 KB", big(s)),
            ];
        case "host":
            return [
                ...shellMeta(s, "reject"), ...controls(s, "reject"), ...unicode(s, "reject"), ...wrongTypes(ok), ...required(spec),
                reject("ssh option", "-oProxyCommand=id"), reject("bad IPv4 (octet 999)", "999.1.1.1"), reject("bad IPv4 (octet 256)", "198.51.100.256"),
                reject("three octets", "198.51.100"), reject("URL", `http://${s}/`), reject("user@host", `root@${s}`),
                reject("empty label", "a..b"), reject("100 KB", big(s)),
            ];
        case "hostPort":
            return [
                ...shellMeta(s, "reject"), ...controls(s, "reject"), ...unicode(s, "reject"), ...wrongTypes(ok), ...required(spec),
                reject("no port", s.replace(/:[0-9]+$/, "")), reject("port 0", s.replace(/:[0-9]+$/, ":0")), reject("port 70000", s.replace(/:[0-9]+$/, ":70000")),
                reject("bad IPv4 (octet 999)", "999.1.1.1:8500"), reject("URL", `http://${s}/`), reject("100 KB", big(s)),
            ];
        case "ipv4":
            return [
                ...shellMeta(s, "reject"), ...controls(s, "reject"), ...unicode(s, "reject"), ...wrongTypes(ok), ...required(spec),
                reject("octet 999", "999.1.1.1"), reject("octet 256", "198.51.100.256"), reject("three octets", "198.51.100"),
                reject("five octets", "198.51.100.1.1"), reject("with a prefix", `${s}/24`), reject("leading zero (octal)", "198.051.100.1"),
                reject("IPv6", "::1"), reject("host name", "localhost"), reject("as a number", 3325256705), reject("100 KB", big(s)),
            ];
        case "cidr":
            return [
                ...shellMeta(s, "reject"), ...controls(s, "reject"), ...unicode(s, "reject"), ...wrongTypes(ok), ...required(spec),
                reject("prefix 33", s.replace(/\/[0-9]+$/, "/33")), reject("no prefix", s.replace(/\/[0-9]+$/, "")), reject("host bits set", "198.51.100.7/24"),
                reject("octet 999", "999.51.100.0/24"), reject("netmask form", "198.51.100.0/255.255.255.0"), reject("100 KB", big(s)),
            ];
        case "ipCidr":
            return [
                ...shellMeta(s, "reject"), ...controls(s, "reject"), ...unicode(s, "reject"), ...wrongTypes(ok), ...required(spec),
                reject("prefix 33", s.replace(/\/[0-9]+$/, "/33")), reject("no prefix", s.replace(/\/[0-9]+$/, "")), reject("octet 999", "999.51.100.50/24"),
                reject("netmask form", "198.51.100.50/255.255.255.0"), reject("100 KB", big(s)),
            ];
        case "ipOrNet":
            return [
                ...shellMeta(s, "reject"), ...controls(s, "reject"), ...unicode(s, "reject"), ...wrongTypes(ok), ...required(spec),
                reject("octet 999", "999.1.1.1"), reject("octet 256", "198.18.1.256"), reject("prefix 33", "198.18.1.0/33"),
                reject("three octets", "198.18.1"), reject("host name", "localhost"), reject("100 KB", big(s)),
            ];
        case "mac":
            return [
                ...shellMeta(s, "reject"), ...controls(s, "reject"), ...unicode(s, "reject"), ...wrongTypes(ok), ...required(spec),
                reject("five octets", "52:54:00:12:34"), reject("seven octets", "52:54:00:12:34:56:78"), reject("not hex", "52:54:00:12:34:zz"),
                reject("multicast", "01:00:5e:00:00:01"), reject("broadcast", "ff:ff:ff:ff:ff:ff"), reject("all zero", "00:00:00:00:00:00"),
                reject("dotted (Cisco) form", "5254.0012.3456"), reject("as a number", 90520730730582), reject("100 KB", big(s)),
            ];
        case "url":
            return [
                ...shellMeta(s, "reject"), ...controls(s, "reject"), ...wrongTypes(ok), ...required(spec),
                reject("file URL", "file:///etc/shadow"), reject("credentials in the URL", "http://admin:hunter2@198.51.100.1/x"),
                reject("iPXE variable", `${s}\${net0/mac}`), reject("space", `${s} console=ttyS0`), reject("not a URL", "../../etc/shadow"),
                reject("100 KB", big(s)), reject("right-to-left override", `\u202e${s}`),
            ];
        case "sha256":
            return [
                ...shellMeta(s, "reject"), ...controls(s, "reject"), ...wrongTypes(ok), ...required(spec),
                reject("63 digits", s.slice(1)), reject("upper case", s.toUpperCase()), reject("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"), reject("100 KB", big(s)),
            ];
        case "size":
            return [
                ...shellMeta(s, "reject"), ...controls(s, "reject"), ...unicode(s, "reject"), ...wrongTypes(ok), ...required(spec),
                reject("decimal unit GB", "10GB"), reject("lower-case unit", "10gib"), reject("negative", "-10GiB"), reject("zero", "0MiB"),
                reject("fraction", "1.5GiB"), reject("space before unit", "10 GiB"), reject("no unit", "1073741824"), reject("bytes as a number", 1073741824),
                reject("KiB (below the smallest LV)", "1024KiB"), reject("above 256TiB", "300TiB"), reject("exponent", "1e3GiB"), reject("100 KB", big(s)),
            ];
        case "int":
            return [
                reject("negative", -1), reject("fraction", 1.5), reject("a numeric string", String(ok)), reject("with a unit", `${String(ok)}GB`),
                reject("1e15", 1e15), reject("beyond 2^53", 2 ** 53 + 2), reject("a boolean", true), reject("an object", {}), reject("shell text", "$(id)"),
                reject("NaN", Number.NaN), reject("Infinity", Number.POSITIVE_INFINITY), ...(spec.required ? [reject("null", null)] : []),
            ];
        case "number":
            return [
                reject("negative", -1), reject("a numeric string", String(ok)), reject("with a unit", `${String(ok)}TB`), reject("1e15", 1e15),
                reject("a boolean", true), reject("an object", {}), reject("shell text", "$(id)"), reject("NaN", Number.NaN), reject("Infinity", Number.POSITIVE_INFINITY),
            ];
        case "bool":
            return [reject("string true", "true"), reject("string false", "false"), reject("1", 1), reject("0", 0), reject("yes", "yes"), reject("an object", {}), reject("a list", [true])];
        case "secret":
            // Any text can be a password: metacharacters are data. Only a value that
            // cannot be one is refused, and no message may repeat it.
            return [
                accept("shell metacharacters (data)", (spec.maxLength ?? 1024) > 40 ? `${secretCanary}; $(id) \`id\` '"|&` : "$(id);`id`'\"|&", { secret: true }),
                accept("unicode (data)", `${secretCanary}-пароль-\u202e`, { secret: true }),
                reject("a number", 42), reject("an object", { value: secretCanary }), reject("a list", [secretCanary]), reject("empty string", ""),
                reject(`over the limit (${spec.maxLength ?? 1024})`, `${secretCanary}${"x".repeat(spec.maxLength ?? 1024)}`, { secret: true }),
            ];
        case "token":
            return [
                ...shellMeta(secretCanary, "reject").map((c) => ({ ...c, secret: true })),
                ...controls(secretCanary, "reject").map((c) => ({ ...c, secret: true })),
                ...unicode(secretCanary, "reject").map((c) => ({ ...c, secret: true })),
                reject("a number", 42), reject("an object", { value: secretCanary }), reject("100 KB", big(secretCanary), { secret: true }),
            ];
        case "privateKey":
            return [
                reject("not a key, with shell text", `${secretCanary}; $(id)`, { secret: true }),
                reject("a public key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"),
                reject("a truncated key", s.slice(0, Math.floor(s.length / 2)), { secret: true }),
                reject("a corrupted key", s.replace(/[A-Za-z0-9+/]{20}(?=\r?\n)/, "A".repeat(20)), { secret: true }),
                reject("a number", 42), reject("an object", { value: secretCanary }), reject("empty string", ""), reject("100 KB", big(s), { secret: true }),
            ];
        case "staticKey":
            return [
                reject("shell text", `${secretCanary}; $(id)`, { secret: true }),
                reject("a truncated key", s.split("\n").slice(0, 8).join("\n"), { secret: true }),
                reject("not hex", s.replace(/[0-9a-f]{32}/, `${secretCanary}zzzzzzzzzzzzzzz`.slice(0, 32)), { secret: true }),
                reject("a number", 42), reject("an object", { value: secretCanary }), reject("empty string", ""), reject("100 KB", big(s), { secret: true }),
            ];
        case "hostKey":
            // After the key comes the line's comment, free text that is only compared in
            // process (never sent to a host): metacharacters there are data.
            return [
                ...shellMeta(s, "accept"), ...controls(s, "reject"), ...wrongTypes(ok),
                reject("wrong key type in the line", s.replace(/^ssh-ed25519/, "ssh-rsa")), reject("short fingerprint", "SHA256:abc"),
                reject("MD5 fingerprint", "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48"), reject("100 KB", big(s)),
            ];
        case "text":
            return [
                ...shellMeta(s, "accept"), ...unicode(s, "accept"), accept("newline", `${s}\nline two`), accept("path traversal text", "../../etc/shadow"),
                accept("100 KB", big(s)), reject("a number", 42), reject("an object", { value: s }), reject("a list", [s]),
                reject(`over the limit (${spec.maxLength ?? 4096})`, "x".repeat((spec.maxLength ?? 4096) + 1)),
            ];
        case "word":
            return [
                ...shellMeta(s, "accept"), ...unicode(s, "accept"), accept("path traversal text", "../../etc/shadow"),
                reject("NUL", `${s}\u0000id`), reject("newline", `${s}\nid`), reject("a number", 42), reject("an object", {}), reject("a list", [s]),
                reject(`over the limit (${spec.maxLength ?? 8192})`, "x".repeat((spec.maxLength ?? 8192) + 1)),
            ];
        case "object":
            return [
                reject("shell text instead of an object", "$(id)"), reject("a number", 42), reject("a list", [ok]),
                reject("an unknown field", { ...(ok as object), "evil; rm -rf /": "$(id)" }), ...(spec.required ? [reject("null", null)] : []),
            ];
        case "list":
            return [
                reject("shell text instead of a list", "$(id)"), reject("a number", 42), reject("an object", { 0: (ok as unknown[])[0] }),
                reject("10,000 items", Array.from({ length: 10_000 }, () => (ok as unknown[])[0])), ...(spec.required ? [reject("null", null)] : []),
            ];
        case "map":
            return [
                reject("shell text instead of an object", "$(id)"), reject("a number", 42), reject("a list", ["x"]),
                reject("key with traversal", "../../etc/shadow", { mode: "key" }), reject("key with shell text", "$(id)", { mode: "key" }),
                reject("key with a newline", "a\nb", { mode: "key" }), reject("absolute key", "/etc/shadow", { mode: "key" }),
                reject("empty key", "", { mode: "key" }), reject("100 KB key", big("k"), { mode: "key" }),
                reject("look-alike key", withLookAlike("etc/hostname"), { mode: "key" }),
            ];
        case "derived":
            return [
                { label: "a value of its own", value: 1, expect: "ignore" },
                { label: "negative", value: -1, expect: "ignore" },
                { label: "2^60", value: 2 ** 60, expect: "ignore" },
                { label: "shell text", value: "$(id)", expect: "ignore" },
            ];
    }
}

// ---- the connection fields, the same wherever a HostConnection appears ----------------

function connectionTable(at: string): KindTable {
    return {
        [at]: { type: "object", required: true },
        [`${at}.host`]: { type: "host", required: true },
        [`${at}.port`]: { type: "int", cases: [reject("port 0", 0), reject("port 65536", 65536)] },
        [`${at}.user`]: { type: "name" },
        [`${at}.password`]: { type: "secret", maxLength: 1024 },
        [`${at}.privateKey`]: { type: "privateKey" },
        [`${at}.privateKeyPassword`]: {
            type: "secret",
            maxLength: 1024,
            // Any other passphrase fails to decrypt the baseline's key, which is a rejection, not data.
            skip: { "shell metacharacters (data)": "a wrong passphrase for the baseline key", "unicode (data)": "a wrong passphrase for the baseline key" },
            cases: [reject("the wrong passphrase", `${secretCanary}; $(id)`, { secret: true, names: "privateKey" })],
        },
        [`${at}.agentSocketPath`]: { type: "localPath" },
        [`${at}.dialErrorLimit`]: { type: "int", skip: { negative: "-1 means retry forever" }, cases: [reject("-2", -2), reject("0", 0)] },
        [`${at}.perDialTimeout`]: { type: "int" },
        [`${at}.hostKey`]: { type: "hostKey" },
        [`${at}.proxy`]: {
            type: "object",
            cases: [
                reject("a jump host with shell text", { host: "127.0.0.1; id" }),
                reject("a jump chain of 5 hops", { host: "a", proxy: { host: "b", proxy: { host: "c", proxy: { host: "d", proxy: { host: "e" } } } } }),
            ],
        },
        [`${at}.sudo`]: { type: "bool" },
        [`${at}.trustOnFirstUse`]: { type: "bool" },
    };
}

function consulTable(at: string, required: boolean): KindTable {
    return {
        [at]: { type: "object", required },
        [`${at}.address`]: { type: "hostPort", required: true },
        [`${at}.scheme`]: { type: "name", cases: [reject("ftp", "ftp"), reject("upper case", "HTTP")] },
        [`${at}.token`]: { type: "token" },
        [`${at}.datacenter`]: { type: "name", skip: { "leading dash (an option)": "sent as an HTTP query parameter (?dc=), never an argv word" } },
    };
}

/** Why `&` is allowed where URLs and kernel arguments go. */
const ampersand = "& separates URL query parameters; it reaches the box as one quoted argv word, and iPXE treats only a standalone && as an operator";
const urlSkips = { "and-list": ampersand };
/** Why a leading dash is harmless where a value is one word after its own option (`--name=VALUE`, `-U VALUE`). */
const dashInOwnWord = "the value is passed as its own argv word after its option (or as --opt=VALUE), so it cannot become an option";
/** Kernel and template arguments are options and paths by nature. */
const argumentText = { "leading dash (an option)": "arguments like --flavor=x are what this field is for", "path traversal": "an argument may name a path on the user's own box; it is one quoted argv word" };

// ---- per kind --------------------------------------------------------------------------

export const hostileTables: Record<string, KindTable> = {
    ConsulKeys: {
        ...consulTable("consul", true),
        prefix: { type: "relkey", required: true },
        keys: { type: "map" },
        "keys.*": { type: "text", maxLength: 512 * 1024 },
        secrets: { type: "map" },
        "secrets.*": { type: "text", maxLength: 512 * 1024 },
        adopt: { type: "bool" },
    },
    RaidArray: {
        ...connectionTable("connection"),
        device: { type: "name", required: true, cases: [reject("md128", "/dev/md128"), reject("another device", "/dev/sda")] },
        level: { type: "name", cases: [reject("raid4", "raid4"), reject("upper case", "RAID1")] },
        members: { type: "list", required: true, cases: [reject("the same disk twice", ["/dev/vdb", "/dev/vdb"]), reject("one member for raid1", ["/dev/vdb"])] },
        "members[]": { type: "path", required: true },
        metadata: { type: "name", cases: [reject("0.90", "0.90")] },
        name: { type: "name", skip: { "leading dash (an option)": dashInOwnWord } },
        allowDataLoss: { type: "bool" },
        wipeOnDelete: { type: "bool", cases: [reject("true against the baseline's allowDataLoss: false", true)] }, // the deprecated name of allowDataLoss
        waitForSync: { type: "bool" },
        syncTimeoutSeconds: { type: "int" },
    },
    VolumeGroup: {
        ...connectionTable("connection"),
        name: { type: "name", required: true, cases: [reject("..", ".."), reject("64 characters", "v".repeat(64))] },
        devices: { type: "list", required: true, cases: [reject("no devices", []), reject("the same device twice", ["/dev/md0", "/dev/md0"])] },
        "devices[]": { type: "path", required: true },
        adopt: { type: "bool" },
        allowDataLoss: { type: "bool" },
        wipeOnDelete: { type: "bool", cases: [reject("true against the baseline's allowDataLoss: false", true)] }, // the deprecated name of allowDataLoss
    },
    NbdVolume: {
        ...connectionTable("connection"),
        ...consulTable("consul", false),
        volumeGroup: { type: "name", required: true },
        name: { type: "name", required: true, cases: [reject("snapshot (reserved)", "snapshot")] },
        size: { type: "size", required: true },
        requestedBytes: { type: "derived" },
        exportName: { type: "name", cases: [reject("generic (reserved)", "generic")], skip: { "leading dash (an option)": "a section name in the export's config file and the name clients ask for; never an argv word" } },
        port: { type: "int", required: true, cases: [reject("privileged port", 80), reject("port 65536", 65536)] },
        readOnly: { type: "bool" },
        allowedClients: { type: "list" },
        "allowedClients[]": { type: "ipOrNet", required: true },
        owner: { type: "mac", required: true },
        exportAddress: { type: "host" },
        consulNode: { type: "name" },
        serviceName: { type: "name", cases: [reject("upper case", "NBD")] },
        adopt: { type: "bool" },
        allowDataLoss: { type: "bool" },
        deleteData: { type: "bool", cases: [reject("true against the baseline's allowDataLoss: false", true)] }, // the deprecated name of allowDataLoss
        asFound: { type: "object" },
        "asFound.service": { type: "name" },
        "asFound.config": { type: "path", required: true },
    },
    PxeServer: {
        ...connectionTable("connection"),
        name: { type: "name", cases: [reject("upper case", "PXE")] },
        address: { type: "ipv4", required: true, cases: [reject("outside the subnet", "198.51.101.10")] },
        interface: { type: "name", cases: [reject("16 characters", "a".repeat(16))] },
        subnet: { type: "cidr", required: true, cases: [reject("/31", "198.51.100.0/31")] },
        gateway: { type: "ipv4", cases: [reject("outside the subnet", "198.51.101.1")] },
        dnsServers: { type: "list" },
        "dnsServers[]": { type: "ipv4", required: true },
        domain: { type: "name", cases: [reject("upper case", "LAB.example")] },
        leaseSeconds: { type: "int", cases: [reject("below two minutes", 60)] },
        httpPort: { type: "int", cases: [reject("port 0", 0)] },
        ipxeBootloaders: { type: "bool" },
        profiles: { type: "map", required: true, cases: [reject("no profiles", {})] },
        "profiles.*": { type: "object", required: true },
        "profiles.*.kind": { type: "name", cases: [reject("windows", "windows")] },
        "profiles.*.kernel": { type: "object", required: true, cases: [reject("both url and path", { url: "http://198.51.100.1/k", path: "/srv/k" })] },
        "profiles.*.kernel.url": { type: "url", required: true, skip: urlSkips },
        "profiles.*.kernel.sha256": { type: "sha256" },
        "profiles.*.kernel.path": { type: "path", required: true },
        "profiles.*.initramfs": { type: "object", required: true },
        "profiles.*.initramfs.url": { type: "url", required: true, skip: urlSkips },
        "profiles.*.initramfs.sha256": { type: "sha256" },
        "profiles.*.initramfs.path": { type: "path", required: true },
        "profiles.*.modloop": { type: "object" },
        "profiles.*.modloop.url": { type: "url", required: true, skip: urlSkips },
        "profiles.*.modloop.sha256": { type: "sha256" },
        "profiles.*.modloop.path": { type: "path", required: true },
        "profiles.*.repository": { type: "url", skip: urlSkips },
        "profiles.*.overlay": { type: "map" },
        "profiles.*.overlay.*": { type: "text", maxLength: 1 << 20 },
        "profiles.*.cmdline": { type: "list" },
        "profiles.*.cmdline[]": { type: "name", required: true, cases: [reject("iPXE variable", "ip=${ip}")], skip: { "and-list": ampersand, ...argumentText } },
        standby: { type: "object" },
        "standby.consulAddress": { type: "hostPort" },
        "standby.lockKey": { type: "relkey" },
        "standby.consulBinary": { type: "path" },
        "standby.token": { type: "token" },
        adopt: { type: "bool" },
    },
    Machine: {
        mac: { type: "mac", required: true },
        hostname: { type: "name", required: true, cases: [reject("upper case", "WEB01"), reject("underscore", "web_01")] },
        ip: { type: "ipv4", required: true },
        role: { type: "name" },
        profile: { type: "name", required: true },
        kernelArgs: { type: "list" },
        "kernelArgs[]": { type: "name", required: true, cases: [reject("iPXE variable", "ip=${ip}")], skip: { "and-list": ampersand, ...argumentText } },
        pxeServers: { type: "list", required: true, cases: [reject("no servers", [])] },
        "pxeServers[]": { type: "object", required: true },
        ...connectionTable("pxeServers[].connection"),
        "pxeServers[].name": { type: "name" },
        ...consulTable("consul", false),
        consulPrefix: { type: "relkey" },
        config: { type: "map" },
        "config.*": { type: "text", maxLength: 512 * 1024 },
        ipmi: { type: "object" },
        "ipmi.address": { type: "host", required: true },
        "ipmi.port": { type: "int", cases: [reject("port 0", 0)] },
        "ipmi.user": { type: "name", required: true, cases: [reject("17 characters", "u".repeat(17))], skip: { "leading dash (an option)": dashInOwnWord } },
        "ipmi.password": {
            type: "secret",
            maxLength: 20,
            cases: [
                reject("NUL (cannot pass through IPMI_PASSWORD)", `${secretCanary}\u0000`, { secret: true }),
                reject("newline", `${secretCanary}\n`, { secret: true }),
                reject("21 bytes in 11 characters", `${"\u00e9".repeat(10)}x`, { secret: true }),
            ],
            skip: { "unicode (data)": "IPMI 2.0 passwords are at most 20 bytes: covered by the 21-byte case" },
        },
        "ipmi.interface": { type: "name", cases: [reject("open", "open")] },
        "ipmi.cipherSuite": { type: "int", cases: [reject("18", 18)] },
        power: { type: "object" },
        "power.onCreate": { type: "name", cases: [reject("cycle", "cycle")] },
        "power.cycleOnBootChange": { type: "bool" },
        "power.offOnDelete": { type: "bool" },
        waitForSsh: { type: "object" },
        ...connectionTable("waitForSsh.connection"),
        "waitForSsh.timeoutSeconds": { type: "int" },
        adopt: { type: "bool" },
    },
    KvmGuest: {
        ...connectionTable("connection"),
        name: { type: "name", required: true },
        memoryMiB: { type: "int", required: true, cases: [reject("bytes instead of MiB", 536870912 * 1024)] },
        vcpus: { type: "int", cases: [reject("0", 0)] },
        disks: { type: "list" },
        "disks[]": { type: "object", required: true, cases: [reject("both nbd and device", { nbd: { host: "a", port: 1, export: "x" }, device: "/dev/vdb" })] },
        "disks[].nbd": { type: "object", required: true },
        "disks[].nbd.host": { type: "host", required: true },
        "disks[].nbd.port": { type: "int", cases: [reject("port 0", 0)] },
        "disks[].nbd.export": { type: "name", required: true },
        "disks[].device": { type: "path", required: true },
        "disks[].readOnly": { type: "bool" },
        nics: { type: "list", required: true, cases: [reject("no NICs", [])] },
        "nics[]": { type: "object", required: true },
        "nics[].bridge": { type: "name", required: true, cases: [reject("16 characters", "b".repeat(16))] },
        "nics[].bridgeType": { type: "name", cases: [reject("macvtap", "macvtap")] },
        "nics[].mac": { type: "mac", required: true },
        "nics[].model": { type: "name", cases: [reject("rtl8139", "rtl8139")] },
        boot: { type: "name", cases: [reject("cdrom", "cdrom")] },
        machine: { type: "name" },
        autostart: { type: "bool" },
        shutdownTimeoutSeconds: { type: "int" },
        migrationPort: { type: "int", cases: [reject("privileged port", 22)] },
        migrationTimeoutSeconds: { type: "int" },
        adopt: { type: "bool" },
        asFound: { type: "object" },
        "asFound.service": { type: "name" },
        "asFound.qmpSocket": { type: "path", required: true },
    },
    OvsBridge: {
        ...connectionTable("connection"),
        name: { type: "name", required: true, cases: [reject("16 characters", "b".repeat(16))] },
        network: { type: "name" },
        uplink: { type: "name", cases: [reject("the bridge itself", "br-storage")] },
        moveAddresses: { type: "bool" },
        tunnels: { type: "list" },
        "tunnels[]": { type: "object", required: true },
        "tunnels[].name": { type: "name", required: true },
        "tunnels[].port": { type: "int", cases: [reject("port 0", 0)] },
        "tunnels[].remote": { type: "host" },
        "tunnels[].remotePort": { type: "int", cases: [reject("port 0", 0)] },
        "tunnels[].key": { type: "staticKey" },
        adopt: { type: "bool" },
    },
    CephOsd: {
        ...connectionTable("connection"),
        device: { type: "path", required: true, skip: { "relative path": "vg/lv is this field's logical-volume form" }, cases: [reject("a dot segment", "/dev/./sdb")] },
        deviceClass: { type: "name" },
        crushWeight: { type: "number" },
        crushLocation: { type: "map", cases: [reject("empty", {}), reject("without a root", { host: "ceph1" })] },
        "crushLocation.*": { type: "name", required: true },
        cluster: { type: "name", cases: [reject("upper case", "Ceph")] },
        adopt: { type: "bool" },
        allowDataLoss: { type: "bool" },
        zapOnDelete: { type: "bool", cases: [reject("true against the baseline's allowDataLoss: false", true)] }, // the deprecated name of allowDataLoss
        drainTimeoutSeconds: { type: "int", cases: [reject("below 10 s", 5)] },
    },
    LxcContainer: {
        ...connectionTable("connection"),
        name: { type: "name", required: true },
        template: { type: "name" },
        templateArgs: { type: "list" },
        "templateArgs[]": { type: "name", required: true, skip: argumentText },
        rootfs: { type: "path", cases: [reject("the box's root", "/")] },
        network: { type: "list" },
        "network[]": { type: "object", required: true },
        "network[].bridge": { type: "name", required: true },
        "network[].hwaddr": { type: "mac" },
        "network[].ipv4": { type: "ipCidr" },
        "network[].gateway": { type: "ipv4" },
        mounts: { type: "list" },
        "mounts[]": { type: "object", required: true },
        "mounts[].source": { type: "path", required: true },
        "mounts[].target": { type: "path", required: true, cases: [reject("the container's root", "/")] },
        "mounts[].type": { type: "name" },
        "mounts[].options": {
            type: "name",
            skip: { "leading dash (an option)": "one field of the LXC mount entry, not an argv word; LXC refuses options it does not know", "path traversal": "one field of the LXC mount entry (options like uid=, context=); LXC refuses options it does not know" },
        },
        autostart: { type: "bool" },
        limits: { type: "object" },
        "limits.memoryMiB": { type: "int" },
        "limits.cpuWeight": { type: "int", cases: [reject("10001", 10001)] },
        "limits.pids": { type: "int" },
        files: { type: "list" },
        "files[]": { type: "object", required: true },
        "files[].path": { type: "path", required: true },
        "files[].content": { type: "text", maxLength: 1024 * 1024 },
        "files[].mode": { type: "name", cases: [reject("setuid", "4755"), reject("not octal", "0888"), reject("symbolic", "u+rwx")] },
        commands: { type: "list" },
        "commands[]": { type: "list", required: true, cases: [reject("an empty command", [])] },
        "commands[][]": { type: "word", maxLength: 8192 },
        timeoutSeconds: { type: "int" },
        adopt: { type: "bool" },
    },
};
