// Where progress and command output go. Its own module so that the host layer can
// report without importing the resource contract (core/resource.ts), which in
// turn names the host layer's Remote: no import cycle between the two.

/** Where progress and command output go (the Pulumi log in production). */
export interface Reporter {
    info(message: string): void;
    warn(message: string): void;
    /** Transient progress ("waiting for safe-to-destroy, 40s"): shown, not kept. */
    progress(message: string): void;
}

export const silentReporter: Reporter = { info() {}, warn() {}, progress() {} };
