/**
 * The one seeded random source. It is counter-based: a draw is a pure function of
 * (key, counter), so a stream of n numbers is "take n counters", the state is two integers
 * (easy to checkpoint), and the wasm kernels (assembly/random.ts) compute exactly the same
 * function, so init, shuffling, augmentation and dropout give the same numbers on every
 * runtime and thread count.
 */

/** lowbias32 integer hash (Chris Wellons): a good avalanche in five cheap steps. */
export function mix(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** 32 random bits for draw number `i` of stream `key`. */
export function randomBits(key: number, i: number): number {
  return mix((mix((key ^ 0x9e3779b9) >>> 0) + i) >>> 0);
}

/** A float in [0, 1) with 24 random bits, identical to the wasm kernels' uniform(). */
export function uniform(key: number, i: number): number {
  return (randomBits(key, i) >>> 8) * 2 ** -24;
}

/** Serializable state of the global generator. */
export interface RandomState {
  seed: number;
  counter: number;
}

let state: RandomState = { seed: 0, counter: 0 };

/** Reset the global generator: the same seed gives the same run. */
export function manualSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`manualSeed: seed must be an integer in [0, 2^32), got ${seed}`);
  }
  state = { seed, counter: 0 };
}

export function getRandomState(): RandomState {
  return { ...state };
}

export function setRandomState(s: RandomState): void {
  state = { seed: s.seed >>> 0, counter: s.counter };
}

/**
 * Run `fn` on another stream — `state`, or a seed's fresh stream — and put the global stream
 * back as it was, so the draws `fn` makes (a probe's noise, a recomputed dropout mask) do not
 * move the run's. `fn` must be synchronous: anything drawing while it awaited would draw from
 * the wrong stream.
 */
export function withRandomState<T>(state: RandomState | number, fn: () => T): T {
  const saved = getRandomState();
  if (typeof state === "number") manualSeed(state);
  else setRandomState(state);
  try {
    const result = fn();
    if (result instanceof Promise) throw new TypeError("withRandomState(fn): fn must be synchronous");
    return result;
  } finally {
    setRandomState(saved);
  }
}

/**
 * Reserve `n` consecutive draws of the global stream. Counters are kept below 2^32 per key:
 * when a stream is used up we move to a fresh key derived from the seed and an epoch.
 */
export function takeDraws(n: number): { key: number; counter: number } {
  const epoch = Math.floor(state.counter / 2 ** 32);
  let offset = state.counter % 2 ** 32;
  if (offset + n > 2 ** 32) {
    state.counter = (epoch + 1) * 2 ** 32;
    return takeDraws(n);
  }
  const key = epoch === 0 ? state.seed : mix((state.seed ^ mix(epoch)) >>> 0);
  state.counter += n;
  return { key, counter: offset };
}

/** A seeded Fisher–Yates permutation of 0..n-1 (data order; not a hot path). */
export function permutation(n: number): Int32Array {
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const { key, counter } = takeDraws(n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(uniform(key, counter + i) * (i + 1));
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm;
}
