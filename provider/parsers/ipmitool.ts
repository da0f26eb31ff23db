// Parsers of ipmitool output. Fixtures in test/unit/fixtures/ipmitool/ are captured
// from real runs against the lab's BMCs (OpenIPMI ipmi_sim).

export type PowerState = "on" | "off";

/** `ipmitool chassis power status` → "Chassis Power is on". */
export function parsePowerStatus(text: string): PowerState {
    const m = /Chassis Power is (on|off)/i.exec(text);
    if (!m) throw new Error(`ipmitool printed no power state: ${JSON.stringify(text.trim().slice(0, 200))}`);
    return m[1].toLowerCase() as PowerState;
}

/** The next-boot device from `ipmitool chassis bootparam get 5` ("Force PXE", "No override" ...). */
export function parseBootDevice(text: string): "pxe" | "disk" | "cdrom" | "bios" | "none" | "other" {
    const m = /Boot Device Selector\s*:\s*(.+)/i.exec(text);
    const sel = (m?.[1] ?? "").trim().toLowerCase();
    // A forced PXE is what matters; some BMCs (ipmi_sim) leave the valid bit clear even then
    if (sel.includes("pxe")) return "pxe";
    // Otherwise "Boot Flag Invalid" means no override, whatever the selector says
    if (/Boot Flag Invalid/i.test(text)) return "none";
    if (sel.includes("hard-drive") || sel.includes("disk")) return "disk";
    if (sel.includes("cd") || sel.includes("dvd")) return "cdrom";
    if (sel.includes("bios")) return "bios";
    if (sel.includes("no override") || sel === "") return "none";
    return "other";
}
