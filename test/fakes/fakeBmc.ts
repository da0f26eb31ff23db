// FakeBmc: a TEST DOUBLE of one BMC: a power state and a one-shot boot device,
// answering the BmcClient interface a Machine gets from the operation context.
// The real ipmitool against ipmi_sim is proven in the lab (test/lab/pxe.test.ts).
import type { BmcClient } from "../../provider/ipmi/ipmitool";
import type { PowerState } from "../../provider/parsers/ipmitool";

export class FakeBmc implements BmcClient {
    /** Every action, in order (`power on`, `bootdev pxe` ...). */
    readonly actions: string[] = [];
    nextBoot: "pxe" | undefined;

    constructor(
        readonly target: string,
        public power: PowerState = "off",
    ) {}

    async powerState(): Promise<PowerState> {
        return this.power;
    }

    async powerOn(): Promise<void> {
        this.actions.push("power on");
        this.power = "on";
    }

    async powerOff(): Promise<void> {
        this.actions.push("power off");
        this.power = "off";
    }

    async bootFromNetworkOnce(): Promise<void> {
        this.actions.push("bootdev pxe");
        this.nextBoot = "pxe";
    }

    /** The same contract as Bmc.cycle: off when on (waiting until it is), then on. */
    async cycle(waitOff: (ms: number) => Promise<void>): Promise<void> {
        if (this.power === "on") {
            await this.powerOff();
            while ((await this.powerState()) !== "off") await waitOff(1000);
        }
        await this.powerOn();
    }
}
