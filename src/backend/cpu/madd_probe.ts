/**
 * The start-up probe of relaxed SIMD's multiply-add. `f32x4.relaxed_madd(a, b, c)` may round
 * once (a fused multiply-add, IEEE 754 fusedMultiplyAdd) or twice (multiply, round, add, round),
 * at the engine's choice: V8 fuses on x86-64 CPUs with FMA3 and on ARM64, and multiplies then
 * adds on x86-64 CPUs without FMA3. The relaxed kernel build (src/backend/cpu/builds.ts) is
 * bitwise reproducible across engines and machines only where it is fused, since a fused
 * multiply-add has exactly one correct result. So the probe runs one relaxed_madd, in a
 * module of a few dozen hand-assembled bytes, on four lanes whose fused and unfused results
 * differ, and compares every lane's bits with both. One lane also tells a true fused
 * multiply-add from one emulated in double precision (which rounds twice, to double then to
 * float). The probe costs one tiny synchronous compile and one call (microseconds); its
 * inputs travel through memory, not constants, so no compiler can fold them away.
 */

/** How this engine evaluates `f32x4.relaxed_madd`. */
export type MaddRounding =
  /** One rounding on every lane: the relaxed build gives the same bits as on every fused engine. */
  | "fused"
  /** Two roundings on every lane: the relaxed build's bits are this engine's own. */
  | "unfused"
  /** Some lanes neither (an emulation, a mix): nothing to promise. */
  | "other"
  /** The engine rejects relaxed SIMD (Node 20 without its flag, engines that lack it). */
  | "unsupported";

export const MADD_ROUNDINGS: readonly MaddRounding[] = ["fused", "unfused", "other", "unsupported"];

/**
 * The probe module, in text form:
 *   (module (memory (export "m") 1)
 *     (func (export "f")
 *       (v128.store (i32.const 48)
 *         (f32x4.relaxed_madd (v128.load (i32.const 0)) (v128.load (i32.const 16)) (v128.load (i32.const 32))))))
 * a, b and c are the f32x4 vectors at bytes 0, 16 and 32; the result lands at byte 48.
 */
const PROBE_WASM = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x05, 0x03, 0x01, 0x00, 0x01, // memory section: one memory, at least 1 page
  0x07, 0x09, 0x02, 0x01, 0x6d, 0x02, 0x00, 0x01, 0x66, 0x00, 0x00, // exports: "m" memory 0, "f" function 0
  0x0a, 0x1f, 0x01, 0x1d, 0x00, // code section: one body of 29 bytes, no locals
  0x41, 0x30, // i32.const 48
  0x41, 0x00, 0xfd, 0x00, 0x04, 0x00, // v128.load align=16 offset=0
  0x41, 0x00, 0xfd, 0x00, 0x04, 0x10, // v128.load offset=16
  0x41, 0x00, 0xfd, 0x00, 0x04, 0x20, // v128.load offset=32
  0xfd, 0x85, 0x02, // f32x4.relaxed_madd (0xfd 0x105)
  0xfd, 0x0b, 0x04, 0x00, // v128.store align=16 offset=0
  0x0b, // end
]);

const U = 2 ** -12;
/**
 * The four lanes (a, b, c), and the bits of a·b + c rounded once (fused) and twice (unfused):
 * 0. (1 + 2⁻¹²)² − (1 + 2⁻¹¹): the exact product 1 + 2⁻¹¹ + 2⁻²⁴ is a tie at float precision
 *    and rounds (to even) to 1 + 2⁻¹¹, so unfused gives 0 and fused the exact 2⁻²⁴.
 * 1. (97·2⁻⁶)(172961·2⁻¹⁸) + 2⁻⁸⁰: the product is exactly 1 + 2⁻²⁴ (2²⁴ + 1 = 97·172961), a
 *    tie; 2⁻⁸⁰ lifts the exact sum above it, so fused rounds up to 1 + 2⁻²³. Unfused rounds
 *    the tie down to 1 and adds 2⁻⁸⁰ to nothing; so does an emulation in double precision,
 *    where 2⁻⁸⁰ is lost in the first rounding.
 * 2. lane 0 negated: fused −2⁻²⁴, unfused 0.
 * 3. (1 + 2⁻²³)(1 − 2⁻²⁴) − 1: the product 1 + 2⁻²⁴ − 2⁻⁴⁷ is just below a tie and rounds to
 *    1, so unfused gives 0 and fused the exact 2⁻²⁴ − 2⁻⁴⁷.
 */
export const PROBE_LANES = {
  a: [1 + U, 97 * 2 ** -6, -(1 + U), 1 + 2 ** -23],
  b: [1 + U, 172961 * 2 ** -18, 1 + U, 1 - 2 ** -24],
  c: [-(1 + 2 * U), 2 ** -80, 1 + 2 * U, -1],
  fused: [2 ** -24, 1 + 2 ** -23, -(2 ** -24), 2 ** -24 - 2 ** -47],
  unfused: [0, 1, 0, 0],
} as const;

/** Run relaxed_madd on the probe lanes here: the four float32 results, or null where relaxed SIMD is missing. */
export function evaluateRelaxedMadd(): Float32Array | null {
  if (!WebAssembly.validate(PROBE_WASM)) return null;
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(PROBE_WASM));
  const memory = new Float32Array((exports.m as WebAssembly.Memory).buffer, 0, 16);
  memory.set(PROBE_LANES.a, 0);
  memory.set(PROBE_LANES.b, 4);
  memory.set(PROBE_LANES.c, 8);
  (exports.f as () => void)();
  return memory.slice(12, 16);
}

/** Classify relaxed_madd's results on the probe lanes (null: relaxed SIMD missing), bit for bit. */
export function classifyMadd(lanes: Float32Array | null): MaddRounding {
  if (lanes === null) return "unsupported";
  const bits = new Uint32Array(lanes.buffer, lanes.byteOffset, 4);
  const sameBits = (expected: readonly number[]) => bits.every((b, i) => b === new Uint32Array(Float32Array.of(expected[i]).buffer)[0]);
  if (sameBits(PROBE_LANES.fused)) return "fused";
  if (sameBits(PROBE_LANES.unfused)) return "unfused";
  return "other";
}

/** Probe this engine (`evaluate` replaces the wasm evaluation in tests). */
export function probeRelaxedMadd(evaluate: () => Float32Array | null = evaluateRelaxedMadd): MaddRounding {
  return classifyMadd(evaluate());
}
