// The operation context of a real run: kinds get real hosts (SSH through the
// shared pool), real Consul clients and ipmitool-backed BMCs. The unit tier
// builds its own context from the doubles in test/fakes/ instead.
import { consulClient } from "./consul/client";
import type { OperationContext } from "./core/resource";
import type { Reporter } from "./core/reporter";
import { Host, SshPool } from "./host";
import { Bmc } from "./ipmi/ipmitool";

export function productionContext(log: Reporter): OperationContext {
    return {
        log,
        remote: (conn, options = {}) => new Host(conn, { log, secrets: options.secrets }),
        consul: (conn) => consulClient(conn),
        bmc: (conn) => new Bmc(conn),
        async probeSsh(conn) {
            // A pool of its own per attempt: one quick dial, never a pooled connection
            // that outlived the box's reboot.
            const pool = new SshPool();
            try {
                await new Host({ ...conn, dialErrorLimit: 1, perDialTimeout: 10 }, { pool }).run(["true"], { timeoutMs: 20_000 });
            } finally {
                await pool.closeAll();
            }
        },
    };
}
