// IPMI power control through the real ipmitool, run LOCALLY (on the machine that
// runs the provider) against a BMC's LAN address: a BMC is not a host we log into,
// so this is not part of the host layer. The password never appears in argv
// (where `ps` would show it): ipmitool -E reads it from IPMI_PASSWORD.
import { execFile } from "child_process";
import { RemoteError } from "../core/errors";
import { ObjectType, t } from "../core/fields";
import { isUnknown, Validator } from "../core/validate";
import { parseBootDevice, parsePowerStatus, PowerState } from "../parsers/ipmitool";

/** How to reach a BMC; every field is documented once, in `ipmiConnectionType` below. */
export interface IpmiConnection {
    address: string;
    port?: number;
    user: string;
    password: string;
    interface?: "lanplus" | "lan";
    cipherSuite?: number;
}

/**
 * The IPMI connection's field table (docs, secrets) for the SDK, the reference
 * pages and the schema. Checked as a whole by checkIpmiConnection (the password's
 * limits are IPMI's and its messages never repeat it).
 */
export const ipmiConnectionType: ObjectType = {
    name: "Ipmi",
    doc: "A machine's BMC, reached with ipmitool over the LAN from where `pulumi up` runs (not over SSH).",
    check: (v, field, value) => checkIpmiConnection(v, field, value),
    fields: {
        address: { type: t.string(), required: true, doc: "The BMC's address: a DNS name or an IP address." },
        port: { type: t.integer, doc: "UDP port; 623 when omitted." },
        user: { type: t.string(), required: true, doc: "BMC user (at most 16 characters)." },
        password: {
            type: t.string(),
            required: true,
            secret: true,
            doc: "BMC password (at most 20 bytes, IPMI 2.0's limit). Handed to ipmitool through its environment (`-E`), never in its arguments.",
        },
        interface: { type: t.string(["lanplus", "lan"]), doc: "`lanplus` (IPMI 2.0, when omitted) or `lan` (IPMI 1.5)." },
        cipherSuite: { type: t.integer, doc: "lanplus cipher suite (`-C`); 3 when omitted, which every BMC (and ipmi_sim) supports." },
    },
};

/** Validates an IPMI connection (no I/O). The password is checked without ever echoing it. */
export function checkIpmiConnection(v: Validator, field: string, value: unknown): IpmiConnection | undefined {
    if (isUnknown(value)) return value as IpmiConnection;
    if (value === null || typeof value !== "object" || Array.isArray(value)) return v.fail(field, "must be an object like { address, user, password }");
    const raw = value as Record<string, unknown>;
    const known = ["address", "port", "user", "password", "interface", "cipherSuite"];
    for (const k of Object.keys(raw)) if (!known.includes(k)) v.fail(`${field}.${k}`, `is not an IPMI field (${known.join(", ")})`);
    const address = v.host(`${field}.address`, raw.address);
    const port = v.integer(`${field}.port`, raw.port, { optional: true, min: 1, max: 65535 });
    const user = v.string(`${field}.user`, raw.user, { maxLength: 16, pattern: /^[A-Za-z0-9_.@-]+$/, patternHint: "is not an IPMI user name (at most 16 letters, digits, _ . @ -)" });
    let password: string | undefined;
    if (isUnknown(raw.password)) password = raw.password as string;
    else if (typeof raw.password !== "string" || raw.password === "") v.fail(`${field}.password`, "is required (a string; pass it as a secret)");
    // It travels in ipmitool's environment (IPMI_PASSWORD), where a NUL cannot go: Node
    // would refuse it with an error that quotes the value.
    else if (/[\u0000-\u001f\u007f]/.test(raw.password)) v.fail(`${field}.password`, "must not contain control characters (NUL, newline ...)");
    else if (Buffer.byteLength(raw.password) > 20) {
        const bytes = Buffer.byteLength(raw.password);
        v.fail(`${field}.password`, bytes === raw.password.length ? `is ${bytes} characters long; IPMI 2.0 passwords have at most 20` : `is ${bytes} bytes long in UTF-8; IPMI 2.0 passwords have at most 20 bytes`);
    }
    else password = raw.password;
    const iface = v.string(`${field}.interface`, raw.interface, { optional: true, pattern: /^(lanplus|lan)$/, patternHint: "must be lanplus or lan" }) as IpmiConnection["interface"];
    const cipherSuite = v.integer(`${field}.cipherSuite`, raw.cipherSuite, { optional: true, min: 0, max: 17 });
    if (!address || !user || password === undefined) return undefined;
    const out: IpmiConnection = { address, user, password };
    if (port !== undefined) out.port = port;
    if (iface !== undefined) out.interface = iface;
    if (cipherSuite !== undefined) out.cipherSuite = cipherSuite;
    return out;
}

/** The ipmitool arguments for one BMC command: everything but the password. */
export function ipmitoolArgv(c: IpmiConnection, command: string[]): string[] {
    const iface = c.interface ?? "lanplus";
    return [
        "-I", iface, "-H", c.address, "-p", String(c.port ?? 623), "-U", c.user, "-E",
        ...(iface === "lanplus" ? ["-C", String(c.cipherSuite ?? 3)] : []),
        "-N", "2", "-R", "3",
        ...command,
    ];
}

const commandTimeoutMs = 30_000;

/** What a kind asks of a BMC (Machine's power actions). */
export interface BmcClient {
    /** How errors and logs name the BMC (`BMC 10.0.3.14:623`). */
    readonly target: string;
    powerState(): Promise<PowerState>;
    powerOn(): Promise<void>;
    powerOff(): Promise<void>;
    /** Next boot (only) from the network. */
    bootFromNetworkOnce(): Promise<void>;
    /** Off (when on, waiting through `waitOff` until it is), then on. */
    cycle(waitOff: (ms: number) => Promise<void>): Promise<void>;
}

/** One BMC. Every call runs ipmitool once; the password goes in through the environment. */
export class Bmc implements BmcClient {
    readonly target: string;

    constructor(private readonly conn: IpmiConnection) {
        this.target = `BMC ${conn.address}:${conn.port ?? 623}`;
    }

    async powerState(): Promise<PowerState> {
        return parsePowerStatus(await this.run(["chassis", "power", "status"], "read power state"));
    }

    async powerOn(): Promise<void> {
        await this.run(["chassis", "power", "on"], "power on");
    }

    async powerOff(): Promise<void> {
        await this.run(["chassis", "power", "off"], "power off");
    }

    /** Next boot (only) from the network: IPMI boot flags are valid for one boot. */
    async bootFromNetworkOnce(): Promise<void> {
        await this.run(["chassis", "bootdev", "pxe"], "set next boot device to PXE");
        const dev = parseBootDevice(await this.run(["chassis", "bootparam", "get", "5"], "read next boot device"));
        if (dev !== "pxe") throw new RemoteError(this.target, "set next boot device to PXE", `the BMC reports next boot device "${dev}" after bootdev pxe`, "check the BMC firmware supports boot device override");
    }

    /**
     * Off (when on), then on: a hard cycle as two explicit steps, because some BMCs
     * refuse `power cycle` when the chassis is off and others do not wait in between.
     */
    async cycle(waitOff: (ms: number) => Promise<void>): Promise<void> {
        if ((await this.powerState()) === "on") {
            await this.powerOff();
            for (let i = 0; i < 30 && (await this.powerState()) === "on"; i++) await waitOff(1000);
        }
        await this.powerOn();
    }

    private run(command: string[], operation: string): Promise<string> {
        const argv = ipmitoolArgv(this.conn, command);
        return new Promise((resolve, reject) => {
            execFile(
                "ipmitool",
                argv,
                { env: { ...process.env, IPMI_PASSWORD: this.conn.password }, timeout: commandTimeoutMs, killSignal: "SIGKILL" },
                (err, stdout, stderr) => {
                    if (!err) return resolve(stdout);
                    const e = err as NodeJS.ErrnoException & { killed?: boolean };
                    const detail = e.code === "ENOENT"
                        ? "ipmitool is not installed on the machine running Pulumi"
                        : e.killed
                          ? `no answer within ${commandTimeoutMs / 1000} s`
                          : `ipmitool exited ${String(e.code)}: ${redact(String(stderr).trim() || String(stdout).trim(), this.conn.password)}`;
                    const hint = e.code === "ENOENT"
                        ? "install ipmitool (apt-get install ipmitool / apk add ipmitool) where `pulumi up` runs"
                        : "check the BMC address, user, password and cipher suite (ipmi.cipherSuite), and that UDP 623 reaches the BMC";
                    reject(new RemoteError(this.target, operation, detail, hint));
                },
            );
        });
    }
}

function redact(text: string, secret: string): string {
    return secret.length >= 3 ? text.split(secret).join("[secret]") : text;
}
