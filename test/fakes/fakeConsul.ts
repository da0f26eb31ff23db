// FakeConsul: a TEST DOUBLE of one Consul agent, in memory: K/V, external catalog
// nodes and their services, and the names of real agents. It answers the
// ConsulClient interface kinds get from the operation context; the real agent is
// proven by the host tier (test/host/consul.test.ts) and the lab.
import type { CatalogNode, ConsulClient, ExternalService, KvOperation, KvStore, NodeCatalog, ServiceCatalog } from "../../provider/consul/client";

export class FakeConsul implements ConsulClient {
    readonly kvData = new Map<string, string>();
    readonly nodeData = new Map<string, CatalogNode>();
    /** Node name → service ID → service. */
    readonly serviceData = new Map<string, Map<string, ExternalService>>();
    /** Names used by real agents (members), which a Machine must not register over. */
    readonly agents = new Set<string>();
    /** Every write, in order (`kv set a/b`, `register node n` ...). */
    readonly writes: string[] = [];

    readonly kv: KvStore = {
        tree: async (prefix) => new Map([...this.kvData].filter(([k]) => k.startsWith(prefix))),
        apply: async (ops: KvOperation[]) => {
            for (const op of ops) {
                this.writes.push(`kv ${op.verb} ${op.key}`);
                if (op.verb === "set") this.kvData.set(op.key, op.value);
                else this.kvData.delete(op.key);
            }
        },
    };

    readonly nodes: NodeCatalog = {
        registerExternalNode: async (n) => {
            this.writes.push(`register node ${n.node}`);
            this.nodeData.set(n.node, { node: n.node, address: n.address, meta: { ...n.meta, "external-node": "true" } });
        },
        deregisterNode: async (node) => {
            this.writes.push(`deregister node ${node}`);
            this.nodeData.delete(node);
            this.serviceData.delete(node);
        },
        node: async (node) => this.nodeData.get(node),
        isAgentMember: async (node) => this.agents.has(node),
    };

    readonly services: ServiceCatalog = {
        register: async (s) => {
            this.writes.push(`register service ${s.serviceId} on ${s.node}`);
            this.nodeData.set(s.node, { node: s.node, address: s.address, meta: { "external-node": "true", "external-probe": "false" } });
            const onNode = this.serviceData.get(s.node) ?? new Map<string, ExternalService>();
            onNode.set(s.serviceId, { ...s });
            this.serviceData.set(s.node, onNode);
        },
        service: async (node, serviceId) => this.serviceData.get(node)?.get(serviceId),
        deregister: async (node, serviceId) => {
            this.writes.push(`deregister service ${serviceId} from ${node}`);
            const onNode = this.serviceData.get(node);
            onNode?.delete(serviceId);
            if (onNode && onNode.size === 0) {
                this.serviceData.delete(node);
                this.nodeData.delete(node);
            }
        },
        findByMeta: async (service, key, value) =>
            [...this.serviceData.values()].flatMap((m) => [...m.values()]).filter((s) => s.service === service && s.meta[key] === value),
    };
}
