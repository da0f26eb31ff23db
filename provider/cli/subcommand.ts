// What a `baremetal` subcommand's module exports (as `command`); main.ts dispatches to it.

/** One subcommand of `baremetal`. */
export interface Subcommand {
    /** One line for `baremetal --help`. */
    summary: string;
    /** Runs the subcommand with the arguments after its name; resolves to the exit status. */
    run(args: string[]): Promise<number>;
}
