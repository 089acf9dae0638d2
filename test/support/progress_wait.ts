/**
 * Waiting on a busy machine: wait for a condition as long as something keeps moving, and fail
 * only when nothing has changed for a while. A fixed deadline on the whole wait turns a
 * machine shared with other work into a red test; a stall deadline does not, and still ends
 * a test that is stuck.
 */

export interface ProgressWait {
  /** What is awaited, for the error message. */
  what: string;
  /** True once the wait is over. */
  done(): Promise<boolean> | boolean;
  /** Any JSON-serialisable snapshot of the work's state; a change counts as progress. */
  progress(): Promise<unknown> | unknown;
  /** Fail when the snapshot has not changed for this long. */
  stallMs: number;
  pollMs?: number;
}

export async function waitForProgress(w: ProgressWait): Promise<void> {
  let last = JSON.stringify(await w.progress());
  let since = Date.now();
  while (!(await w.done())) {
    await new Promise((resolve) => setTimeout(resolve, w.pollMs ?? 100));
    const now = JSON.stringify(await w.progress());
    if (now !== last) {
      [last, since] = [now, Date.now()];
    } else if (Date.now() - since > w.stallMs) {
      throw new Error(`${w.what}: no progress for ${(w.stallMs / 1000).toFixed(1)} s (still at ${now})`);
    }
  }
}
