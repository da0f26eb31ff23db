// PxeServer, part check: check and diff (the table, plus the subnet rules and the
// drift a refresh saw: files edited by hand, DHCP found stopped).
import { checkByTable, diffByTable, erase } from "../../core/fields";
import { inSubnet, parseCidr } from "../../core/ipv4";
import { CheckOutcome, DiffOutcome, sameValue } from "../../core/resource";
import { isUnknown, Validator } from "../../core/validate";
import { baseUrlOf, expectedDigests } from "./render";
import { PxeServerInputs, PxeServerState, spec } from "./spec";

// ---- check -----------------------------------------------------------------------------

export function check(_olds: Record<string, unknown>, news: Record<string, unknown>): CheckOutcome<PxeServerInputs> {
    const v = new Validator();
    const inputs = checkByTable(v, erase(spec), news) as Partial<PxeServerInputs>;
    // The SDK passes the resource name; a caller without it gets the one instance most boxes have.
    if (inputs.name === undefined && (news.name === undefined || news.name === null || news.name === "")) inputs.name = "pxe";
    const { address, subnet, gateway } = inputs;
    const net = subnet && !isUnknown(subnet) ? parseCidr(subnet) : undefined;
    if (net && address && !isUnknown(address) && !inSubnet(address, net)) v.fail("address", `${address} is not in subnet ${subnet}`);
    if (net && gateway && !isUnknown(gateway) && !inSubnet(gateway, net)) v.fail("gateway", `${gateway} is not in subnet ${subnet}`);
    if (!v.ok) return { failures: v.failures };
    return { inputs: inputs as PxeServerInputs, failures: [] };
}

// ---- diff ------------------------------------------------------------------------------

export function diff(_id: string, olds: PxeServerState, news: PxeServerInputs): DiffOutcome {
    const d = diffByTable(erase(spec), olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>);
    // A generated file edited or removed by hand (seen by refresh) is put back by an update.
    const drifted =
        d.replaces.length === 0 &&
        ((olds.files !== undefined && !sameValue(olds.files, expectedDigests(news, olds.family ?? "debian"))) ||
            // DHCP found stopped (crashed, stopped by hand): an update starts it again
            olds.dhcpRole === "stopped");
    // baseUrl is made of address and httpPort: it stays known through an update that keeps both.
    const stables = d.replaces.length === 0 && baseUrlOf(olds) === baseUrlOf(news) ? [...d.stables, "baseUrl"] : d.stables;
    const notes = moveNote(olds, news, d.replaces);
    return { changes: d.changed.length > 0 || drifted, replaces: d.replaces, stables, deleteBeforeReplace: true, ...(notes.length > 0 ? { notes } : {}) };
}

/** What a preview says of a PXE server changing boxes (a state written before the connection's host was plain shows no host in its diff). */
function moveNote(olds: PxeServerState, news: PxeServerInputs, replaces: string[]): string[] {
    const [from, to] = [olds.connection?.host, news.connection?.host];
    if (!replaces.includes("connection.host") || from === undefined) return [];
    const where = isUnknown(to) ? "a box known after apply" : to;
    return [`${news.name} moves from ${from} to ${where}: it is removed from ${from}, then set up anew on ${where}`];
}
