/**
 * Progress for `retrograd train`: on a terminal a live bar per epoch (step/total, images/s,
 * loss, accuracy, ETA) redrawn in place; off a terminal one plain line every few seconds, so
 * logs stay readable. With a step budget (--steps) the count, the bar and the ETA are over
 * that budget instead of the epoch. Then a final table of the epochs.
 */
import type { EpochRecord, StepRecord } from "../src/train/index.ts";

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class Progress {
  private lastPrint = 0;
  constructor(
    private readonly out: { write(s: string): void; isTTY?: boolean },
    private readonly epochs: number,
    private readonly quiet: boolean,
    /** The step budget (0: none; the counts are per epoch). */
    private readonly totalSteps = 0,
    private readonly intervalMs = 5000,
  ) {}

  step(r: StepRecord): void {
    if (this.quiet) return;
    const [done, total] = this.totalSteps > 0 ? [r.step, this.totalSteps] : [r.batch, r.batches];
    // Images left in the epoch (or the step budget) at the current rate.
    const etaSeconds = r.imagesPerSec > 0 ? ((total - done) * r.batchSize) / r.imagesPerSec : NaN;
    const stats = `${done}/${total}  ${r.imagesPerSec.toFixed(0)} img/s  loss ${r.loss.toFixed(4)}  acc ${pct(r.accuracy)}`;
    const now = Date.now();
    if (this.out.isTTY) {
      if (now - this.lastPrint < 100 && done < total) return;
      const width = 24;
      const filled = Math.round((width * done) / total);
      this.out.write(`\r\x1b[2Kepoch ${r.epoch}/${this.epochs} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${stats}  ETA ${clock(etaSeconds)}`);
    } else if (now - this.lastPrint >= this.intervalMs) {
      this.out.write(`epoch ${r.epoch}/${this.epochs} step ${stats}  ETA ${clock(etaSeconds)}\n`);
    } else return;
    this.lastPrint = now;
  }

  epoch(r: EpochRecord): void {
    if (this.quiet) return;
    if (this.out.isTTY) this.out.write("\r\x1b[2K");
    this.out.write(
      `epoch ${r.epoch}: train loss ${r.trainLoss.toFixed(4)} acc ${pct(r.trainAccuracy)} | ` +
        `test loss ${r.testLoss.toFixed(4)} acc ${pct(r.testAccuracy)} | ${r.seconds.toFixed(1)} s, ${r.imagesPerSec.toFixed(0)} img/s\n`,
    );
  }
}

export function finalTable(history: readonly EpochRecord[]): string {
  const header = ["epoch", "train loss", "train acc", "test loss", "test acc", "time", "img/s"];
  const rows = history.map((r) => [
    String(r.epoch), r.trainLoss.toFixed(4), pct(r.trainAccuracy), r.testLoss.toFixed(4), pct(r.testAccuracy),
    `${r.seconds.toFixed(1)} s`, r.imagesPerSec.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n") + "\n";
}
