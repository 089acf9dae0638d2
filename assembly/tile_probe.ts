// The kernel the start-up probe times (src/backend/cpu/tile_loads.ts) to choose the plain
// build's A-load shape: the direct convolution's register tile (A through a tap-offset table)
// over KC taps, `reps` times, with the four A values of a step splat-loaded (shuffled 0) or
// loaded once and shuffled (1). Its operands (1 KiB of A, 8 KiB of B) stay in L1, so the time
// is the loop's own. Uses the gemm packing scratch; returns one sum so the work is kept.
import { gemmScratchPtr } from "./gemm";
import { KC, multiplyTileShaped, NR, PACKA_BYTES, PACKB_BYTES } from "./tile";

export function tile_loads_probe(shuffled: i32, reps: i32): f32 {
  const offsets = gemmScratchPtr();
  const a = offsets + (<usize>KC << 2);
  const pb = gemmScratchPtr() + <usize>PACKA_BYTES;
  const tile = pb + <usize>PACKB_BYTES;
  // Small, normal values (no subnormals, no overflow in 256 sums); taps spread over 1 KiB of A.
  for (let p = 0; p < KC; p++) store<i32>(offsets + (<usize>p << 2), (p * 5 & 63) << 4);
  for (let i = 0; i < 256 + 4; i++) store<f32>(a + (<usize>i << 2), <f32>(i & 7) * 0.001);
  for (let i = 0; i < KC * NR; i++) store<f32>(pb + (<usize>i << 2), <f32>(i & 15) * 0.001);
  let sum: f32 = 0;
  for (let r = 0; r < reps; r++) {
    if (shuffled != 0) multiplyTileShaped(KC, a, 0, offsets, true, true, pb, tile);
    else multiplyTileShaped(KC, a, 0, offsets, true, false, pb, tile);
    sum += load<f32>(tile);
  }
  return sum;
}
