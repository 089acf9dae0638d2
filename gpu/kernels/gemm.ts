/**
 * WGSL for everything GEMM-shaped: the plain GEMM and the three convolution passes, all
 * generated from one register-blocked template. A workgroup of TY×TX threads (32 to 256) computes a
 * BM×BN tile of C (BM = TY·TM, BN = TX·TN), staging 16-deep (or 8-deep) slices of A and B in
 * workgroup memory as vec4s; each thread owns TM×TN outputs held in TM·TN/4 vec4 accumulators.
 * The code is generated straight-line (no private arrays indexed in loops: a driver that
 * cannot prove such an index constant spills the array to local memory, which is what held
 * the first template to 0.5 % of an H200's fp32 peak), the inner product over a slice is
 * fully unrolled, and the next slice's global loads are issued into registers before the
 * current slice is multiplied, so their latency hides behind the arithmetic (one shared
 * buffer, register double-buffering). A thread's rows and columns are strided by 4·TY and
 * 4·TX in groups of four, so its vec4 reads of the shared tiles are conflict-free
 * (broadcast for A, consecutive for B), as in the classic CUDA SGEMM blocking.
 *
 * A kernel only says how to read A(row, k), B(k, col) and store C(row, col) — so the
 * convolutions are implicit GEMMs: forward and weight-gradient gather input patches on the
 * fly (no im2col buffer), the input gradient gathers the output gradient at the positions
 * each input pixel contributed to (no col2im scatter). Their geometry is a set of pipeline
 * constants (one pipeline per layer shape, whatever the batch), so their index math divides
 * by literals. Workgroup z is the convolution group and, for the weight gradient, the K
 * slice (split-K: its K = batch·OH·OW is huge while M×N is small, so slices of K run in
 * parallel into a scratch buffer whose partial sums one more kernel adds in slice order). Every output element is summed in a fixed order (ascending k
 * within a slice, slices in order), whatever the tile, so results are deterministic.
 */
import { foldedGrid, type GpuBuffer, type GpuContext, LARGE_GPU_WORKGROUPS } from "../device.ts";
import type { KernelSpec, ScalarType, StorageBinding } from "../kernel.ts";
import { elementwiseKernel, ENTRY_ARGS, LINEAR_WORKGROUP, read, write } from "../kernel.ts";

const TILE_DEPTH = 16;

/** Thread grid TY×TX (the workgroup's threads, a multiple of 32) and outputs per thread TM×TN (multiples of 4). */
interface Tile {
  readonly ty: number;
  readonly tx: number;
  readonly tm: number;
  readonly tn: number;
  /** Depth in K of a staged slice: TILE_DEPTH unless the tile is too wide for it (then a divisor of it). */
  readonly tk?: number;
}

/**
 * The tiles, named BM×BN, by rows. The narrow ones serve the 16- and 32-channel convolutions
 * of small ResNets: the 8-row-per-thread ones (TM = 8) read 3 or 4 vec4s of workgroup memory
 * per 32 or 64 FMAs where a 4×4 thread reads 2 per 16; the few-thread ones (16x64, 16x32,
 * 32x128) fit a weight gradient's short N (Cg·KH·KW: 27, 144, 288) without computing mostly
 * padding. 16x512 stages 8-deep K slices, so its two tiles fit in 16.5 KiB of workgroup memory.
 */
export const TILES = {
  "16x512": { ty: 2, tx: 128, tm: 8, tn: 4, tk: 8 },
  "16x256": { ty: 4, tx: 64, tm: 4, tn: 4 },
  "16x128": { ty: 2, tx: 32, tm: 8, tn: 4 },
  "16x64": { ty: 4, tx: 16, tm: 4, tn: 4 },
  "16x32": { ty: 4, tx: 8, tm: 4, tn: 4 },
  "32x256": { ty: 8, tx: 32, tm: 4, tn: 8 },
  "32x128": { ty: 4, tx: 32, tm: 8, tn: 4 },
  "64x256": { ty: 8, tx: 32, tm: 8, tn: 8 },
  "64x64": { ty: 16, tx: 16, tm: 4, tn: 4 },
  "64x128": { ty: 16, tx: 16, tm: 4, tn: 8 },
  "128x64": { ty: 16, tx: 16, tm: 8, tn: 4 },
  "128x128": { ty: 16, tx: 16, tm: 8, tn: 8 },
} as const satisfies Record<string, Tile>;
export type TileName = keyof typeof TILES;

export interface GemmShape {
  key: string;
  /** Parameters besides the GEMM extents gM, gN, gK and the split (splits, kSplit), which every kernel gets first. */
  params: readonly (readonly [string, ScalarType])[];
  bindings: readonly StorageBinding[];
  overrides?: KernelSpec["overrides"];
  /**
   * WGSL defining, for each side X of A and B, a type KPartX, kPartX(k, g) -> KPartX and
   * loadX(kPartX(k, g), i, g) -> f32 (A(row = i, k), B(k, col = i)), and storeC(row, col, z, acc);
   * g the group and z = g·splits + slice (the group itself where K is not split). A staged
   * unit is 4 rows of A or 4 columns of B at one k, so the template calls kPartX once per unit:
   * what depends on k alone (a convolution's tap or output position, divisions included) is
   * computed there, not once per element.
   */
  access: string;
  /** WGSL booleans: whether consecutive k are adjacent in memory for A / for B (picks the coalesced tile-load order). */
  aKFastest: string;
  bKFastest: string;
  /** Whether K may be split: storeC then writes slice z's partial sums as a [z][gM][gN] array into its one output. */
  splittable: boolean;
}

const vecNames = ["x", "y", "z", "w"];

function tiledGemm(shape: GemmShape, tileName: TileName): KernelSpec {
  const tile: Tile = TILES[tileName];
  const { ty: TY, tx: TX, tm: TM, tn: TN } = tile;
  const THREADS = TY * TX, TILE_K = tile.tk ?? TILE_DEPTH;
  const QA = (TY * TM) / 4, QB = (TX * TN) / 4; // vec4s per k-row of each shared tile
  const BM = 4 * QA, BN = 4 * QB;
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  /**
   * The global-to-shared copy of one side: unit u (a vec4 of 4 rows of A, or 4 columns of B,
   * at one k) goes to thread u % THREADS; consecutive threads take consecutive k where k is
   * the side's fastest dimension in memory, else consecutive vec4s, so loads coalesce.
   */
  const side = (s: "a" | "b", Q: number, kFastest: string) => {
    const units = TILE_K * Q, perThread = Math.ceil(units / THREADS);
    const guard = (l: number, body: string) => units % THREADS === 0 ? body : `if (${s}u${l} < ${units}u) { ${body} }`;
    const X = s.toUpperCase();
    const first = (l: number) => s === "a" ? `rowBase + 4u * aq${l}` : `colBase + 4u * bq${l}`;
    const unit = (l: number) => `let kk = k + ${s}k${l}; let t = kPart${X}(kk, g); ` +
      `${s}r${l} = vec4<f32>(${range(4).map((e) => `ld${X}(t, ${first(l)} + ${e}u, kk, kEnd, g)`).join(", ")});`;
    return {
      setup: range(perThread).map((l) => `  let ${s}u${l} = lid + ${THREADS * l}u;
  let ${s}k${l} = select(${s}u${l} / ${Q}u, ${s}u${l} % ${TILE_K}u, ${kFastest});
  let ${s}q${l} = select(${s}u${l} % ${Q}u, ${s}u${l} / ${TILE_K}u, ${kFastest});
  var ${s}r${l} = vec4<f32>();`).join("\n"),
      load: range(perThread).map((l) => guard(l, `{ ${unit(l)} }`)).join("\n    "),
      store: range(perThread).map((l) =>
        guard(l, `tile${s.toUpperCase()}[${s}k${l} * ${Q}u + ${s}q${l}] = ${s}r${l};`)).join("\n    "),
    };
  };
  const a = side("a", QA, shape.aKFastest), b = side("b", QB, shape.bKFastest);
  const acc = (i: number, j: number) => `c${i}_${j}`;
  const step = (kk: number) => [
    ...range(TM / 4).map((g) => `let a${g} = tileA[${kk * QA + g * TY}u + ty];`),
    ...range(TN / 4).map((h) => `let b${h} = tileB[${kk * QB + h * TX}u + tx];`),
    ...range(TM).flatMap((i) => range(TN / 4).map((j) =>
      `${acc(i, j)} = ${acc(i, j)} + a${i >> 2}.${vecNames[i & 3]} * b${j};`)),
  ].join(" ");
  const stores = range(TM).map((i) => `  {
    let row = rowBase + ${(i >> 2) * 4 * TY + (i & 3)}u + 4u * ty;
    if (row < P.gM) {
${range(TN / 4).flatMap((j) => range(4).map((e) =>
    `      if (col${j} + ${e}u < P.gN) { storeC(row, col${j} + ${e}u, wid.z, ${acc(i, j)}.${vecNames[e]}); }`)).join("\n")}
    }
  }`).join("\n");
  return {
    key: `${shape.key}_${tileName}`,
    params: [["gM", "u32"], ["gN", "u32"], ["gK", "u32"], ["splits", "u32"], ["kSplit", "u32"], ...shape.params],
    bindings: shape.bindings,
    overrides: shape.overrides,
    code: `${shape.access}
fn ldA(t: KPartA, row: u32, k: u32, kEnd: u32, g: u32) -> f32 {
  if (row < P.gM && k < kEnd) { return loadA(t, row, g); }
  return 0.0;
}
fn ldB(t: KPartB, col: u32, k: u32, kEnd: u32, g: u32) -> f32 {
  if (col < P.gN && k < kEnd) { return loadB(t, col, g); }
  return 0.0;
}
var<workgroup> tileA: array<vec4<f32>, ${TILE_K * QA}>;
var<workgroup> tileB: array<vec4<f32>, ${TILE_K * QB}>;

@compute @workgroup_size(${THREADS})
fn main(${ENTRY_ARGS}) {
  let g = wid.z / P.splits;
  let kBegin = (wid.z % P.splits) * P.kSplit;
  let kEnd = min(P.gK, kBegin + P.kSplit);
  let rowBase = wid.y * ${BM}u;
  let colBase = wid.x * ${BN}u;
  let tx = lid % ${TX}u;
  let ty = lid / ${TX}u;
${a.setup}
${b.setup}
${range(TM).flatMap((i) => range(TN / 4).map((j) => `  var ${acc(i, j)} = vec4<f32>();`)).join("\n")}
  var k = kBegin;
  {
    ${a.load}
    ${b.load}
  }
  loop {
    if (k >= kEnd) { break; }
    ${a.store}
    ${b.store}
    workgroupBarrier();
    k = k + ${TILE_K}u;
    if (k < kEnd) {
      ${a.load}
      ${b.load}
    }
${range(TILE_K).map((kk) => `    { ${step(kk)} }`).join("\n")}
    workgroupBarrier();
  }
${range(TN / 4).map((j) => `  let col${j} = colBase + ${j * 4 * TX}u + 4u * tx;`).join("\n")}
${stores}
}`,
  };
}

const kernels = new Map<string, KernelSpec>();

/** The kernel of `shape` on `tile`, generated once. */
export function gemmKernel(shape: GemmShape, tile: TileName): KernelSpec {
  const key = `${shape.key}_${tile}`;
  let spec = kernels.get(key);
  if (!spec) kernels.set(key, (spec = tiledGemm(shape, tile)));
  return spec;
}

/** out[g, r] = Σ_s partial[g, s, r] over the K slices in order (r < MN): the split-K reduction. */
const splitSumKernel = elementwiseKernel("gemm_split_sum", [["MN", "u32"], ["splits", "u32"]],
  [read("partial"), write("out")], `
  let base = (i / P.MN) * P.splits * P.MN + i % P.MN;
  var sum = 0.0;
  for (var s = 0u; s < P.splits; s = s + 1u) { sum = sum + partial[base + s * P.MN]; }
  out[i] = sum;`);

/** Extents of a GEMM-shaped call: C is M×N, the reduction K long, per group. */
export interface GemmExtents {
  M: number;
  N: number;
  K: number;
  groups: number;
}

/** Which tile, and into how many K slices (1: no split). */
export interface GemmPlan {
  tile: TileName;
  splits: number;
}

/** The shortest K slice worth a workgroup of its own (16 shared-memory rounds). */
const MIN_SLICE_K = 256;

/** The tile every adapter can run (8 KiB of workgroup memory). */
const SMALL_TILE: TileName = "64x64";

/** Workgroup memory of a tile's two shared slices. */
function sharedBytes(tile: TileName): number {
  const { ty, tx, tm, tn, tk } = TILES[tile] as Tile;
  return (tk ?? TILE_DEPTH) * (ty * tm + tx * tn) * 4;
}

function workgroups(e: GemmExtents, tile: TileName): number {
  const { ty, tx, tm, tn } = TILES[tile];
  return Math.ceil(e.M / (ty * tm)) * Math.ceil(e.N / (tx * tn)) * e.groups;
}

/** Columns of padding a tile may compute past N, as a share of N, before a narrower tile is planned. */
const MAX_COLUMN_WASTE = 0.25;

/** The tiles whose BM covers M's rows without waste (16, 32, 64 rows; else the large ones), largest first. */
function tilesForRows(M: number): TileName[] {
  return M <= 16 ? ["16x512", "16x256", "16x128", "16x64", "16x32"] : M <= 32 ? ["32x256", "32x128"]
    : M <= 64 ? ["64x256", "64x128", "64x64"] : ["128x128", "128x64", "64x128", "64x64"];
}

/**
 * The default plan for an adapter that `busy` workgroups keep busy (GpuContext.busyWorkgroups):
 * among the tiles that cover M's rows without waste and N's columns with at most
 * MAX_COLUMN_WASTE of padding (the narrowest where none does: a weight gradient's N is
 * Cg·KH·KW, 27 to 576 in a CIFAR ResNet, where a 256-wide tile would compute up to 89 %
 * padding), the largest that still gives `busy` workgroups (a thread with 8×8 outputs reads
 * 4 vec4s of workgroup memory per 64 FMAs, one with 4×4 reads 2 per 16, so large tiles win
 * once the adapter is full), else the smallest; where that gives fewer and the shape may
 * split K, as many K slices (at least MIN_SLICE_K long) as bring the workgroups up to `busy`.
 * `only` fixes the tile (the split is still planned).
 */
export function planGemm(e: GemmExtents, splittable: boolean, only?: TileName, busy = LARGE_GPU_WORKGROUPS): GemmPlan {
  const rows = tilesForRows(e.M);
  const fitting = rows.filter((t) => {
    const bn = TILES[t].tx * TILES[t].tn;
    return Math.ceil(e.N / bn) * bn <= (1 + MAX_COLUMN_WASTE) * e.N;
  });
  const candidates = only ? [only] : fitting.length ? fitting : [rows[rows.length - 1]];
  const tile = candidates.find((t) => workgroups(e, t) >= busy) ?? candidates[candidates.length - 1];
  const wgs = workgroups(e, tile);
  const splits = splittable && wgs < busy
    ? Math.max(1, Math.min(Math.ceil(busy / wgs), Math.floor(e.K / MIN_SLICE_K)))
    : 1;
  return { tile, splits };
}

/**
 * Record a GEMM-shaped call: `buffers` in the shape's binding order, `params` the shape's
 * own. With K split, the output binding gets a scratch buffer of the slices' partial sums,
 * reduced into the real output by a second dispatch.
 */
export function dispatchGemm(
  ctx: GpuContext, shape: GemmShape, e: GemmExtents, buffers: readonly GpuBuffer[], params: Record<string, number>,
  constants?: Record<string, number | boolean>, plan: GemmPlan = planGemm(e, shape.splittable, undefined, ctx.busyWorkgroups),
): void {
  const { M, N, K, groups } = e;
  if (M === 0 || N === 0) return;
  // The wide tiles stage 17-18 KiB; WebGPU only promises 16 KiB of workgroup memory (desktop adapters give 32 or more).
  const tileName = sharedBytes(plan.tile) <= ctx.limits.maxComputeWorkgroupStorageSize ? plan.tile : SMALL_TILE;
  const { ty, tx, tm, tn } = TILES[tileName];
  // A partial-sum buffer larger than one binding allows falls back to fewer slices.
  const splits = shape.splittable
    ? Math.max(1, Math.min(plan.splits, Math.floor(ctx.maxBufferElements / (groups * M * N)))) : 1;
  const kSplit = Math.ceil(K / splits / TILE_DEPTH) * TILE_DEPTH;
  const grid: [number, number, number] = [Math.ceil(N / (tx * tn)), Math.ceil(M / (ty * tm)), groups * splits];
  const all = { gM: M, gN: N, gK: K, splits, kSplit, ...params };
  const spec = gemmKernel(shape, tileName);
  if (splits === 1) {
    ctx.dispatch(spec, { params: all, constants, buffers, grid });
    return;
  }
  const out = shape.bindings.findIndex((b) => b.writable);
  const partial = ctx.alloc(groups * splits * M * N);
  ctx.dispatch(spec, { params: all, constants, buffers: buffers.map((b, i) => i === out ? partial : b), grid });
  const n = groups * M * N;
  ctx.dispatch(splitSumKernel, {
    params: { n, MN: M * N, splits }, buffers: [partial, buffers[out]],
    grid: foldedGrid(Math.ceil(n / LINEAR_WORKGROUP), ctx.limits.maxComputeWorkgroupsPerDimension),
  });
  ctx.free(partial);
}

/** C = alpha·op(A)·op(B) + beta·C, row-major; C is not read when beta = 0 (NaN-safe). */
export const GEMM: GemmShape = {
  key: "gemm",
  params: [["alpha", "f32"], ["beta", "f32"]],
  bindings: [read("A"), read("B"), write("C")],
  overrides: [["TRANS_A", "bool"], ["TRANS_B", "bool"]],
  access: `
alias KPartA = u32;
alias KPartB = u32;
fn kPartA(k: u32, z: u32) -> u32 { return k; }
fn kPartB(k: u32, z: u32) -> u32 { return k; }
fn loadA(k: u32, row: u32, z: u32) -> f32 {
  if (TRANS_A) { return A[k * P.gM + row]; }
  return A[row * P.gK + k];
}
fn loadB(k: u32, col: u32, z: u32) -> f32 {
  if (TRANS_B) { return B[col * P.gK + k]; }
  return B[k * P.gN + col];
}
fn storeC(row: u32, col: u32, z: u32, acc: f32) {
  let idx = row * P.gN + col;
  if (P.beta == 0.0) { C[idx] = P.alpha * acc; } else { C[idx] = P.alpha * acc + P.beta * C[idx]; }
}`,
  aKFastest: "!TRANS_A",
  bKFastest: "TRANS_B",
  splittable: false,
};

/** The names of a convolution's pipeline constants (ConvGeometry without the batch; Cg, Og the per-group channels). */
const CONV_CONSTANTS = ["C", "H", "W", "O", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW", "OH", "OW", "Cg", "Og"] as const;

/** The values of a convolution kernel's pipeline constants. */
export type ConvConstants = Record<(typeof CONV_CONSTANTS)[number], number>;

/**
 * The convolution geometry is a set of pipeline-overridable constants, not uniforms: the
 * compiler then sees every division and modulo of the index math (by OW, KW, KH·KW, SH, ...)
 * as one by a literal, which it turns into a multiply-high and shift (or folds away, as
 * `% SH` at stride 1), where a division by a run-time value costs a GPU a ~20-instruction
 * sequence on the integer pipe (half the FP32 rate on NVIDIA's Hopper) and a CPU adapter
 * (lavapipe) one scalar `div` per lane. The batch stays a uniform (inside gN or gK), so one
 * pipeline per layer geometry serves every batch size.
 */
const CONV_OVERRIDES = CONV_CONSTANTS.map((n) => [n, "u32"] as const);

/**
 * A filter tap k = (c, kh, kw) of a convolution, computed once per staged unit where the
 * unit shares it: its channel (`first` + k / (KH·KW)) and its shift from a window's origin
 * (kh·DH − PH, kw·DW − PW).
 */
const TAPS = `
struct Tap { channel: u32, shiftH: i32, shiftW: i32 }
fn tapOf(k: u32, first: u32) -> Tap {
  let r = k % (KH * KW);
  return Tap(first + k / (KH * KW), i32((r / KW) * DH) - i32(PH), i32((r % KW) * DW) - i32(PW));
}`;

/**
 * The input patch matrix of group g without materialising it: element (k, q) with k a tap
 * of the group's channels and q = (n, oh, ow) an output position, itself its sample and the
 * origin of its window (oh·SH, ow·SW); patchAt() reads x where the two meet, 0 in the padding.
 */
const PATCHES = `${TAPS}
struct Position { n: u32, originH: i32, originW: i32 }
fn positionOf(q: u32) -> Position {
  let p = q % (OH * OW);
  return Position(q / (OH * OW), i32((p / OW) * SH), i32((p % OW) * SW));
}
fn patchAt(t: Tap, s: Position) -> f32 {
  let ih = s.originH + t.shiftH;
  let iw = s.originW + t.shiftW;
  if (ih < 0 || iw < 0 || ih >= i32(H) || iw >= i32(W)) { return 0.0; }
  return x[((s.n * C + t.channel) * H + u32(ih)) * W + u32(iw)];
}`;

/**
 * y[n, g·Og+o, p] = Σ_k w[g·Og+o, k] · patches(k, (n, p)): M = Og, N = batch·OH·OW, K = Cg·KH·KW.
 * A unit of B is 4 output positions at one tap.
 */
export const CONV_FORWARD: GemmShape = {
  key: "conv2d_forward",
  params: [],
  bindings: [read("x"), read("w"), write("y")],
  overrides: CONV_OVERRIDES,
  access: `${PATCHES}
alias KPartA = u32;
alias KPartB = Tap;
fn kPartA(k: u32, g: u32) -> u32 { return k; }
fn kPartB(k: u32, g: u32) -> Tap { return tapOf(k, g * Cg); }
fn loadA(k: u32, row: u32, g: u32) -> f32 { return w[(g * Og + row) * (Cg * KH * KW) + k]; }
fn loadB(t: Tap, col: u32, g: u32) -> f32 { return patchAt(t, positionOf(col)); }
fn storeC(row: u32, col: u32, g: u32, acc: f32) {
  let ohw = OH * OW;
  y[((col / ohw) * O + g * Og + row) * ohw + col % ohw] = acc;
}`,
  aKFastest: "true",
  bKFastest: "false",
  splittable: false,
};

/**
 * dw[g·Og+o, k] = Σ_(n,p) dy[n, g·Og+o, p] · patches(k, (n, p)): the batch is the GEMM's
 * reduction dimension (M = Og, N = Cg·KH·KW, K = batch·OH·OW). A unit of A is 4 output
 * channels at one position q, whose offset in dy is computed once; a unit of B, 4 taps at one
 * position.
 */
export const CONV_BACKWARD_WEIGHT: GemmShape = {
  key: "conv2d_backward_weight",
  params: [],
  bindings: [read("dy"), read("x"), write("dw")],
  overrides: CONV_OVERRIDES,
  access: `${PATCHES}
alias KPartA = u32;
alias KPartB = Position;
/** The offset of position q = (n, p) in dy's first channel: n·O·OH·OW + p. */
fn kPartA(q: u32, g: u32) -> u32 { return (q / (OH * OW)) * O * (OH * OW) + q % (OH * OW); }
fn kPartB(q: u32, g: u32) -> Position { return positionOf(q); }
fn loadA(at: u32, row: u32, g: u32) -> f32 { return dy[at + (g * Og + row) * (OH * OW)]; }
fn loadB(s: Position, col: u32, g: u32) -> f32 { return patchAt(tapOf(col, g * Cg), s); }
fn storeC(row: u32, col: u32, z: u32, acc: f32) { dw[(z * Og + row) * P.gN + col] = acc; }`,
  aKFastest: "true",
  bKFastest: "true",
  splittable: true,
};

/**
 * dx[n, g·Cg+c, ih, iw] = Σ_(o,kh,kw) w[g·Og+o, c, kh, kw] · dy[n, g·Og+o, oh, ow] over the
 * taps whose output position (oh, ow) = ((ih+PH−kh·DH)/SH, (iw+PW−kw·DW)/SW) is whole and in
 * range: M = Cg, N = batch·H·W, K = Og·KH·KW. Every dx element is written, so no zeroing. A
 * unit of A is 4 input channels at one tap (o, kh, kw), whose offset in w is computed once; a
 * unit of B, 4 input pixels at one tap.
 */
export const CONV_BACKWARD_INPUT: GemmShape = {
  key: "conv2d_backward_input",
  params: [],
  bindings: [read("dy"), read("w"), write("dx")],
  overrides: CONV_OVERRIDES,
  access: `${TAPS}
alias KPartA = u32;
alias KPartB = Tap;
/** The offset of w[g·Og+o, 0, kh, kw] for tap k = (o, kh, kw). */
fn kPartA(k: u32, g: u32) -> u32 { return (g * Og + k / (KH * KW)) * Cg * (KH * KW) + k % (KH * KW); }
fn kPartB(k: u32, g: u32) -> Tap { return tapOf(k, g * Og); }
fn loadA(at: u32, c: u32, g: u32) -> f32 { return w[at + c * (KH * KW)]; }
fn loadB(t: Tap, col: u32, g: u32) -> f32 {
  let hw = H * W;
  let s = col % hw;
  let th = i32(s / W) - t.shiftH;
  let tw = i32(s % W) - t.shiftW;
  if (th < 0 || tw < 0) { return 0.0; }
  let uh = u32(th);
  let uw = u32(tw);
  if (uh % SH != 0u || uw % SW != 0u) { return 0.0; }
  let oh = uh / SH;
  let ow = uw / SW;
  if (oh >= OH || ow >= OW) { return 0.0; }
  return dy[(((col / hw) * O + t.channel) * OH + oh) * OW + ow];
}
fn storeC(c: u32, col: u32, g: u32, acc: f32) {
  let hw = H * W;
  dx[((col / hw) * C + g * Cg + c) * hw + col % hw] = acc;
}`,
  aKFastest: "true",
  bKFastest: "false",
  splittable: false,
};
