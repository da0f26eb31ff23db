import * as pulumi from "@pulumi/pulumi";

/**
 * How to reach a host over SSH. The field names are those of @pulumi/command's
 * `remote.ConnectionArgs`, so the same object can be passed to both.
 */
export interface ConnectionArgs {
    /** Address of the host: a DNS name, an IPv4 or an IPv6 address. */
    host: pulumi.Input<string>;
    /** SSH port; 22 when omitted. */
    port?: pulumi.Input<number>;
    /** Login user; `root` when omitted. */
    user?: pulumi.Input<string>;
    /** Password (kept secret). */
    password?: pulumi.Input<string>;
    /** Private key in OpenSSH or PEM format (kept secret). */
    privateKey?: pulumi.Input<string>;
    /** Passphrase of an encrypted privateKey (kept secret). */
    privateKeyPassword?: pulumi.Input<string>;
    /** ssh-agent socket; `$SSH_AUTH_SOCK` is used when no credential is given. */
    agentSocketPath?: pulumi.Input<string>;
    /** Dial attempts before giving up; 10 when omitted; -1 retries forever. */
    dialErrorLimit?: pulumi.Input<number>;
    /** Seconds for one dial attempt; 15 when omitted; 0 means no limit. */
    perDialTimeout?: pulumi.Input<number>;
    /**
     * The host's public key (`ssh-ed25519 AAAA...`) or fingerprint (`SHA256:...`).
     * An unpinned host is refused unless `trustOnFirstUse` is set.
     */
    hostKey?: pulumi.Input<string>;
    /** A jump host the connection is tunnelled through (like `ssh -J`). */
    proxy?: pulumi.Input<ConnectionArgs>;
    /** Run every command through `sudo -n` (needs NOPASSWD sudo for the login user). */
    sudo?: pulumi.Input<boolean>;
    /** Accept an unpinned host's key; the key seen becomes the resource's `hostKeySeen` output. */
    trustOnFirstUse?: pulumi.Input<boolean>;
}

/**
 * The connection with its credentials made secret, whatever the caller passed:
 * they are stored in state (delete needs them) and must be encrypted there.
 */
export function secretConnection(c: pulumi.Input<ConnectionArgs>): pulumi.Output<ConnectionArgs> {
    return pulumi.output(c).apply((conn) => protect(conn as ConnectionArgs));
}

function protect(c: ConnectionArgs): ConnectionArgs {
    const out: ConnectionArgs = { ...c };
    for (const k of ["password", "privateKey", "privateKeyPassword"] as const) {
        if (out[k] !== undefined) out[k] = pulumi.secret(out[k] as pulumi.Input<string>);
    }
    if (out.proxy) out.proxy = pulumi.output(out.proxy).apply((p) => protect(p as ConnectionArgs));
    return out;
}
