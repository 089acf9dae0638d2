/**
 * Stopping a run cleanly on a signal: SIGINT (Ctrl-C) and SIGTERM (what containers, systemd
 * and serverless platforms send before they kill a job) ask the training loop to finish its
 * step and save a checkpoint; the command then exits with the shell's code for that signal
 * (130 or 143). A second signal quits at once. Node and Deno both deliver these through
 * node:process. A library user does the same with the Trainer's `shouldStop` callback.
 */

const EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof EXIT_CODES;

export class StopSignals {
  private received: StopSignal | null = null;
  private readonly handlers = new Map<StopSignal, () => void>();

  constructor(log: { write(s: string): void }) {
    for (const signal of Object.keys(EXIT_CODES) as StopSignal[]) {
      const handler = () => {
        if (this.received) process.exit(EXIT_CODES[signal]); // a second signal: stop now
        this.received = signal;
        log.write(`\n${signal}: finishing this step and saving a checkpoint (send it again to quit at once)\n`);
      };
      this.handlers.set(signal, handler);
      process.on(signal, handler);
    }
  }

  /** A stop was asked for (the trainer's shouldStop). */
  get requested(): boolean {
    return this.received !== null;
  }

  /** The exit status of a run stopped by the signal received (130 for SIGINT, 143 for SIGTERM). */
  get exitCode(): number {
    return this.received ? EXIT_CODES[this.received] : 0;
  }

  /** Stop listening (the default actions return). */
  dispose(): void {
    for (const [signal, handler] of this.handlers) process.off(signal, handler);
  }
}
