/**
 * Made-up chain profiles for the planners' tests: every figure a block's profile has, drawn
 * from the seeded hash, so the programs can be checked against brute force on many chains.
 */
import { uniform } from "../../src/random.ts";
import type { BlockProfile, ChainProfile } from "../../src/memory/index.ts";

/** A made-up profile of n blocks and a loss, from the seeded hash (stream `key`). */
export function randomProfile(n: number, key: number): ChainProfile {
  let i = 0;
  const r = (lo: number, hi: number) => Math.floor(lo + (hi - lo) * uniform(key, i++));
  const blocks: BlockProfile[] = Array.from({ length: n + 1 }, (_, k) => {
    const outputBytes = r(1, 50) * 64, keptBytes = r(0, 200) * 64;
    return {
      name: k < n ? `b${k}` : "loss", outputBytes, keptBytes, keepsInput: r(0, 2) === 1, keepsOutput: r(0, 2) === 1,
      forwardPeak: outputBytes + keptBytes + r(0, 40) * 64, checkpointedForwardPeak: outputBytes + r(0, 40) * 64,
      backwardPeak: r(0, 120) * 64, backwardNet: -keptBytes + r(0, 30) * 64, untilBackward: r(0, 300) * 64,
      flops: k < n ? r(1, 1000) : 0,
    };
  });
  return { blocks, inputBytes: r(1, 50) * 64, baseBytes: r(0, 1000) * 64, backend: "none", inputShape: [1] };
}
