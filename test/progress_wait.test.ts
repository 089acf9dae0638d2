/**
 * The browser tests wait for progress, not for a fixed time (test/support/progress_wait.ts):
 * work that takes longer than the stall limit but keeps moving is waited for; work that
 * stops moving fails after the stall limit, with what it was waiting for and where it stood.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { waitForProgress } from "./support/progress_wait.ts";

test("a slow run that keeps stepping is waited for, past any fixed deadline of the stall's length", async () => {
  let steps = 0;
  const timer = setInterval(() => steps++, 50);
  const started = Date.now();
  try {
    await waitForProgress({ what: "30 steps", done: () => steps >= 30, progress: () => steps, stallMs: 400, pollMs: 20 });
  } finally {
    clearInterval(timer);
  }
  assert.ok(Date.now() - started > 400, "it took longer than the stall limit");
});

test("a stuck run fails after the stall limit, saying where it stood", async () => {
  let error: unknown;
  const started = Date.now();
  try {
    await waitForProgress({ what: "the run to end", done: () => false, progress: () => ({ phase: "training", steps: 7 }), stallMs: 300, pollMs: 20 });
  } catch (e) {
    error = e;
  }
  assert.match((error as Error).message, 'the run to end: no progress for 0.3 s (still at {"phase":"training","steps":7})');
  assert.ok(Date.now() - started < 5000, "it did not wait much longer");
});

test.run();
