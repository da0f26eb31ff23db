// Bounding and serialising work on a host. A Semaphore caps concurrent SSH
// sessions on one connection (sshd refuses channels beyond MaxSessions); a
// NamedLocks registry serialises steps that must not overlap on one host, such as
// two package installs (apk/dpkg hold a database lock and fail, not wait).

/** Releases what was acquired; calling it twice is harmless. */
export type Release = () => void;

/** At most `limit` holders at once; waiters are served first come, first served. */
export class Semaphore {
    private active = 0;
    private readonly waiting: (() => void)[] = [];

    constructor(readonly limit: number) {
        if (!Number.isInteger(limit) || limit < 1) throw new Error(`semaphore limit must be a positive integer, got ${limit}`);
    }

    async acquire(): Promise<Release> {
        if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
        else this.active++;
        let released = false;
        return () => {
            if (released) return;
            released = true;
            const next = this.waiting.shift();
            // Hand the slot straight to the next waiter: `active` stays the same.
            if (next) next();
            else this.active--;
        };
    }

    get inUse(): number {
        return this.active;
    }

    get queued(): number {
        return this.waiting.length;
    }
}

/** An async mutex: a semaphore of one. */
export class Mutex extends Semaphore {
    constructor() {
        super(1);
    }
}

/**
 * Well-known lock names. Resources use these so that, e.g., every package
 * install on a host goes through the same lock whichever resource asks.
 * A lock is named only through this table or `objectLock`: LockName is a
 * closed type, so a misspelt name does not compile instead of quietly making
 * a second lock.
 */
export const hostLocks = {
    /** apk, apt-get, dpkg: one package-manager run at a time. */
    packages: "packages",
    /** lvcreate/lvextend/vgchange...: LVM metadata updates. */
    lvm: "lvm",
    /** mdadm create/assemble/manage. */
    mdadm: "mdadm",
    /** lbu commit: one overlay write at a time. */
    persist: "persist",
    /** systemctl enable/disable, rc-update: init-system links, one change at a time (many resources ensure the same service). */
    services: "services",
} as const;

export type HostLockName = (typeof hostLocks)[keyof typeof hostLocks];

/** Kinds of objects that have a lock each: "lxc-create" is held around one container's lxc-create and lxc-destroy and the looks create and delete act on. */
export type ObjectLockKind = "lxc-create";

declare const objectLockBrand: unique symbol;

/** The lock of one object (made only by objectLock). */
export type ObjectLockName = string & { readonly [objectLockBrand]: ObjectLockKind };

export type LockName = HostLockName | ObjectLockName;

/** Lower-case names only: a lock name becomes a file name on the host. */
const lockNamePattern = /^[a-z][a-z0-9-]{0,79}$/;

/**
 * The lock of one object of a kind, e.g. objectLock("lxc-create", "web").
 * `object` is a name the kind's check already limited to lower-case letters,
 * digits and '-'; anything else is a bug and throws.
 */
export function objectLock(kind: ObjectLockKind, object: string): ObjectLockName {
    const name = `${kind}-${object}`;
    if (!/^[a-z0-9][a-z0-9-]*$/.test(object) || !lockNamePattern.test(name)) {
        throw new Error(`${JSON.stringify(object)} cannot name a ${kind} lock: use at most ${79 - kind.length} lower-case letters, digits or '-'`);
    }
    return name as ObjectLockName;
}

/** Checked again where a name reaches a host (it may come from a plan read back as data). */
export function assertLockName(name: string): void {
    if (!lockNamePattern.test(name)) throw new Error(`lock name ${JSON.stringify(name)} must match ${lockNamePattern}`);
}

/** The lock file on the host: flock(1) on it keeps other processes (another `pulumi up`) out too. */
export function remoteLockPath(name: LockName): string {
    assertLockName(name);
    return `/run/lock/baremetal-${name}.lock`;
}

/** In-process mutexes keyed by host and lock name. */
export class NamedLocks {
    private readonly mutexes = new Map<string, { mutex: Mutex; users: number }>();

    /** Runs `fn` while holding the lock `name` on `host`. */
    async with<T>(host: string, name: LockName, fn: () => Promise<T>): Promise<T> {
        assertLockName(name);
        const key = `${host}\u0000${name}`;
        let entry = this.mutexes.get(key);
        if (!entry) {
            entry = { mutex: new Mutex(), users: 0 };
            this.mutexes.set(key, entry);
        }
        entry.users++;
        const release = await entry.mutex.acquire();
        try {
            return await fn();
        } finally {
            release();
            // Forget idle locks so a long-lived provider does not accumulate them.
            if (--entry.users === 0) this.mutexes.delete(key);
        }
    }

    /** How many distinct host/name locks are currently held or awaited. */
    get size(): number {
        return this.mutexes.size;
    }
}
