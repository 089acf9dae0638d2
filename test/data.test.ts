/**
 * The data layer: IDX / CIFAR / gzip readers against tiny fixtures in the real formats
 * (test/fixtures/data, written by make_fixtures.py, whose pixel formulas are recomputed
 * here), a DatasetError naming the file for each kind of damage, the DataLoader's batching,
 * normalisation, seeded shuffling and augmentation, and the dataset search order with an
 * in-memory file system. If Debian's dataset-fashion-mnist is installed, the real test split too.
 */
import { existsSync, readFileSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { test } from "uvu";
import * as assert from "uvu/assert";
import "../src/mod.ts"; // registers the CPU backend the loaders' tensors land on
import { RetrogradError } from "../src/errors.ts";
import { manualSeed, uniform } from "../src/random.ts";
import {
  concatDatasets, type DataFs, DataLoader, type Dataset, DatasetError, gunzip, idxDataset, isGzip, loadDataset,
  locateDataset, parseCifar, parseIdx, readIdx, subset, synthetic,
} from "../src/data/index.ts";

const dir = "test/fixtures/data/";
const fixture = (name: string) => new Uint8Array(readFileSync(dir + name));

/** Expect `fn` to throw (or reject with) a DatasetError whose message contains every fragment. */
async function throwsDataset(fn: () => unknown, ...fragments: string[]): Promise<void> {
  let error: unknown = null;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  assert.ok(error !== null, `expected a DatasetError mentioning ${fragments.join(" / ")}, but nothing was thrown`);
  assert.instance(error, DatasetError);
  assert.instance(error, RetrogradError);
  const message = (error as Error).message;
  for (const fragment of fragments) assert.ok(message.includes(fragment), `message "${message}" should mention "${fragment}"`);
}

const idxPixel = (i: number, y: number, x: number) => 10 * i + 3 * y + x + 1;
const cifarPixel = (i: number, c: number, y: number, x: number) => (7 * i + 50 * c + y + x) % 256;

// ---- gzip and IDX ----

test("parseIdx reads dims and exact pixel values", () => {
  const images = parseIdx(fixture("images-5x4x3-idx3-ubyte"), "images");
  assert.equal(images.dims, [5, 4, 3]);
  assert.is(images.data.length, 60);
  for (let i = 0; i < 5; i++) for (let y = 0; y < 4; y++) for (let x = 0; x < 3; x++) {
    assert.is(images.data[i * 12 + y * 3 + x], idxPixel(i, y, x));
  }
  const labels = parseIdx(fixture("labels-5-idx1-ubyte"), "labels");
  assert.equal(labels.dims, [5]);
  assert.equal(Array.from(labels.data), [3, 0, 9, 1, 7]);
});

test("gzip and plain IDX files read back the same", async () => {
  assert.ok(isGzip(fixture("images-5x4x3-idx3-ubyte.gz")));
  assert.not.ok(isGzip(fixture("images-5x4x3-idx3-ubyte")));
  for (const name of ["images-5x4x3-idx3-ubyte", "labels-5-idx1-ubyte"]) {
    const plain = await readIdx(fixture(name), name);
    const gzipped = await readIdx(fixture(name + ".gz"), name + ".gz");
    assert.equal(gzipped.dims, plain.dims);
    assert.equal(Array.from(gzipped.data), Array.from(plain.data));
  }
  assert.equal(Array.from(await gunzip(fixture("labels-5-idx1-ubyte.gz"))), Array.from(fixture("labels-5-idx1-ubyte")));
});

test("idxDataset pairs images and labels", async () => {
  const ds = idxDataset(
    await readIdx(fixture("images-5x4x3-idx3-ubyte.gz"), "images"),
    await readIdx(fixture("labels-5-idx1-ubyte"), "labels"),
    "pair",
  );
  assert.equal([ds.n, ds.channels, ds.height, ds.width, ds.classes], [5, 1, 4, 3, 10]);
  assert.equal(Array.from(ds.labels), [3, 0, 9, 1, 7]);
  assert.instance(ds.labels, Int32Array);
  assert.is(ds.images[2 * 12 + 1 * 3 + 2], idxPixel(2, 1, 2));
});

test("IDX errors name the file and the problem", async () => {
  const images = fixture("images-5x4x3-idx3-ubyte");
  const name = "train-images-idx3-ubyte";
  await throwsDataset(() => parseIdx(images.subarray(0, 3), name), name, "too short");
  await throwsDataset(() => parseIdx(images.subarray(0, 10), name), name, "too short", "3 dimensions");
  await throwsDataset(() => parseIdx(images.subarray(0, 70), name), name, "truncated", "60", "54");
  const wrongMagic = images.slice();
  wrongMagic[0] = 0x50;
  await throwsDataset(() => parseIdx(wrongMagic, name), name, "50 00 08 03", "expected 00 00 08");
  const floats = images.slice();
  floats[2] = 0x0d;
  await throwsDataset(() => parseIdx(floats, name), name, "0x0d", "float");
  await throwsDataset(() => parseIdx(fixture("images-5x4x3-idx3-ubyte.gz"), "x.gz"), "x.gz", "gzip");
});

test("corrupt and truncated gzip give a DatasetError naming the file", async () => {
  const gz = fixture("images-5x4x3-idx3-ubyte.gz");
  await throwsDataset(() => readIdx(gz.subarray(0, gz.length - 10), "cut.gz"), "cut.gz", "gzip");
  const corrupt = gz.slice();
  for (let i = 12; i < corrupt.length - 8; i++) corrupt[i] ^= 0xa5;
  await throwsDataset(() => readIdx(corrupt, "bad.gz"), "bad.gz", "corrupt");
});

test("idxDataset: count mismatch and out-of-range labels", async () => {
  const images = parseIdx(fixture("images-5x4x3-idx3-ubyte"), "images");
  const fourLabels = parseIdx(new Uint8Array([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4]), "labels");
  await throwsDataset(() => idxDataset(images, fourLabels, "train-images"), "train-images", "5 images but 4 labels");
  const badLabels = parseIdx(new Uint8Array([0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 10, 4, 5]), "labels");
  await throwsDataset(() => idxDataset(images, badLabels, "train-labels"), "train-labels", "label 10", "0..9");
  await throwsDataset(() => idxDataset(fourLabels, fourLabels, "pair"), "pair", "3 dimensions");
});

// ---- CIFAR ----

test("CIFAR-10: labels and CHW pixels", () => {
  const ds = parseCifar(fixture("cifar10-3.bin"), { variant: 10 }, "cifar10-3.bin");
  assert.equal([ds.n, ds.channels, ds.height, ds.width, ds.classes], [3, 3, 32, 32, 10]);
  assert.equal(Array.from(ds.labels), [2, 9, 0]);
  for (const [i, c, y, x] of [[0, 0, 0, 0], [1, 2, 31, 5], [2, 1, 7, 31], [2, 2, 31, 31]]) {
    assert.is(ds.images[((i * 3 + c) * 32 + y) * 32 + x], cifarPixel(i, c, y, x), `pixel ${[i, c, y, x]}`);
  }
});

test("CIFAR-100: the fine label is used", () => {
  const ds = parseCifar(fixture("cifar100-2.bin"), { variant: 100 }, "cifar100-2.bin");
  assert.equal([ds.n, ds.classes], [2, 100]);
  assert.equal(Array.from(ds.labels), [42, 99]);
  assert.is(ds.images[3072 + 1024 + 33], cifarPixel(1, 1, 1, 1));
});

test("CIFAR errors: size not a multiple of the record, label out of range", async () => {
  const bytes = fixture("cifar10-3.bin");
  await throwsDataset(() => parseCifar(bytes.subarray(0, 3073 * 2 + 100), { variant: 10 }, "data_batch_1.bin"),
    "data_batch_1.bin", "3073", "2 records and 100 bytes left over");
  // CIFAR-100 needs 3074-byte records: a CIFAR-10 file does not divide.
  await throwsDataset(() => parseCifar(bytes, { variant: 100 }, "train.bin"), "train.bin", "3074");
  const bad = bytes.slice();
  bad[3073] = 10;
  await throwsDataset(() => parseCifar(bad, { variant: 10 }, "test_batch.bin"), "test_batch.bin", "label 10", "example 1");
});

// ---- Dataset helpers ----

test("concatDatasets and subset", () => {
  const a = parseCifar(fixture("cifar10-3.bin"), { variant: 10 }, "a");
  const both = concatDatasets([a, a]);
  assert.is(both.n, 6);
  assert.equal(Array.from(both.labels), [2, 9, 0, 2, 9, 0]);
  assert.equal(Array.from(both.images.subarray(3 * 3072, 4 * 3072)), Array.from(a.images.subarray(0, 3072)));
  const picked = subset(both, [4, 0]);
  assert.equal(Array.from(picked.labels), [9, 2]);
  assert.equal(Array.from(picked.images.subarray(0, 3072)), Array.from(a.images.subarray(3072, 6144)));
  assert.throws(() => subset(both, [6]), (e: unknown) => e instanceof DatasetError && /index 6/.test((e as Error).message));
  const mono = synthetic({ n: 2, channels: 1, height: 32, width: 32, classes: 10, seed: 0 });
  assert.throws(() => concatDatasets([a, mono]), (e: unknown) => e instanceof DatasetError && /3×32×32/.test((e as Error).message));
});

test("synthetic is deterministic from its seed, balanced, and in range", () => {
  const options = { n: 40, channels: 3, height: 8, width: 8, classes: 4, seed: 11 };
  const a = synthetic(options), b = synthetic(options), c = synthetic({ ...options, seed: 12 });
  assert.equal(Array.from(a.images), Array.from(b.images));
  assert.not.equal(Array.from(a.images), Array.from(c.images));
  assert.equal(Array.from(a.labels.subarray(0, 6)), [0, 1, 2, 3, 0, 1]);
  // Class blobs differ: the mean images of two classes are far apart.
  const mean = (label: number) => {
    const m = new Float64Array(192);
    for (let i = label; i < 40; i += 4) for (let p = 0; p < 192; p++) m[p] += a.images[i * 192 + p] / 10;
    return m;
  };
  const m0 = mean(0), m1 = mean(1);
  let distance = 0;
  for (let p = 0; p < 192; p++) distance += (m0[p] - m1[p]) ** 2;
  assert.ok(Math.sqrt(distance) > 100, `class means too close: ${Math.sqrt(distance)}`);
});

// ---- DataLoader ----

/** n one-channel images of h×w whose pixels all equal their index (and label = index). */
function indexed(n: number, h = 2, w = 2): Dataset {
  const images = new Uint8Array(n * h * w);
  for (let i = 0; i < n; i++) images.fill(i, i * h * w, (i + 1) * h * w);
  return { images, labels: Int32Array.from({ length: n }, (_, i) => i), n, channels: 1, height: h, width: w, classes: n };
}

/** Labels of every batch of one epoch, tensors disposed. */
function epochLabels(loader: DataLoader): number[] {
  const out: number[] = [];
  for (const batch of loader.epoch()) {
    out.push(...batch.labels);
    batch.x.dispose();
  }
  return out;
}

test("loader: batch shapes, numBatches and dropLast", () => {
  const ds = indexed(5, 4, 3);
  const loader = new DataLoader(ds, { batchSize: 2, shuffle: false });
  assert.is(loader.numBatches, 3);
  const shapes: number[][] = [], indices: number[] = [];
  for (const batch of loader.epoch()) {
    shapes.push([...batch.x.shape]);
    indices.push(batch.index);
    assert.is(batch.labels.length, batch.x.shape[0]);
    batch.x.dispose();
  }
  assert.equal(shapes, [[2, 1, 4, 3], [2, 1, 4, 3], [1, 1, 4, 3]]);
  assert.equal(indices, [0, 1, 2]);
  const dropping = new DataLoader(ds, { batchSize: 2, shuffle: false, dropLast: true });
  assert.is(dropping.numBatches, 2);
  assert.equal(epochLabels(dropping), [0, 1, 2, 3]);
});

test("loader: per-channel normalisation of pixel/255", () => {
  const ds = parseCifar(fixture("cifar10-3.bin"), { variant: 10 }, "cifar10-3.bin");
  const mean = [0.5, 0.25, 0.1], std = [0.25, 0.5, 2];
  const loader = new DataLoader(ds, { batchSize: 3, shuffle: false, mean, std });
  const [batch] = [...loader.epoch()];
  const x = batch.x.dataSync();
  let worst = 0;
  for (let i = 0; i < 3; i++) for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) for (let w = 0; w < 32; w++) {
    const expected = (cifarPixel(i, c, y, w) / 255 - mean[c]) / std[c];
    worst = Math.max(worst, Math.abs(x[((i * 3 + c) * 32 + y) * 32 + w] - expected));
  }
  assert.ok(worst < 1e-6, `worst normalisation error ${worst}`);
  assert.equal(Array.from(batch.labels), [2, 9, 0]);
  batch.x.dispose();
  assert.throws(() => new DataLoader(ds, { batchSize: 3, mean: [0.5], std: [1] }), /one value per channel/);
});

test("loader: shuffle is a permutation that depends on the seed", () => {
  const ds = indexed(37);
  const loader = new DataLoader(ds, { batchSize: 8 });
  manualSeed(1);
  const first = epochLabels(loader);
  const second = epochLabels(loader);
  manualSeed(1);
  const again = epochLabels(loader);
  manualSeed(2);
  const otherSeed = epochLabels(loader);
  assert.equal([...first].sort((a, b) => a - b), Array.from({ length: 37 }, (_, i) => i));
  assert.equal(again, first);
  assert.not.equal(second, first, "each epoch draws a new order");
  assert.not.equal(otherSeed, first);
  assert.equal(epochLabels(new DataLoader(ds, { batchSize: 8, shuffle: false })), Array.from({ length: 37 }, (_, i) => i));
});

test("loader: pixels follow their labels through the shuffle", () => {
  const ds = indexed(10, 3, 3);
  manualSeed(5);
  for (const batch of new DataLoader(ds, { batchSize: 4 }).epoch()) {
    const x = batch.x.dataSync();
    batch.labels.forEach((label, b) => {
      for (let p = 0; p < 9; p++) assert.ok(Math.abs(x[b * 9 + p] - label / 255) < 1e-7);
    });
    batch.x.dispose();
  }
});

/** A dataset of n images (c×h×w) with distinct, asymmetric pixel values 1..250. */
function patterned(n: number, c: number, h: number, w: number): Dataset {
  const images = Uint8Array.from({ length: n * c * h * w }, (_, i) => 1 + ((i * 37) % 250));
  return { images, labels: new Int32Array(n), n, channels: c, height: h, width: w, classes: 1 };
}

test("loader: flip without crop gives each image identical or mirrored, both seen", () => {
  const [n, c, h, w] = [24, 2, 3, 4];
  const ds = patterned(n, c, h, w);
  manualSeed(3);
  const loader = new DataLoader(ds, { batchSize: n, shuffle: false, augment: { crop: 0, flip: true } });
  const [batch] = [...loader.epoch()];
  const x = batch.x.dataSync();
  let mirrored = 0;
  for (let i = 0; i < n; i++) {
    let same = true, flipped = true;
    for (let p = 0; p < c * h; p++) for (let col = 0; col < w; col++) {
      const got = Math.round(x[(i * c * h + p) * w + col] * 255);
      same &&= got === ds.images[(i * c * h + p) * w + col];
      flipped &&= got === ds.images[(i * c * h + p) * w + (w - 1 - col)];
    }
    assert.ok(same || flipped, `image ${i} is neither identical nor mirrored`);
    if (flipped) mirrored++;
  }
  assert.ok(mirrored > 0 && mirrored < n, `${mirrored} of ${n} mirrored`);
  batch.x.dispose();
});

test("loader: crop + flip reproduce the documented draws exactly", () => {
  // Without shuffling, an epoch's first reservation is the augmentation draws: key = seed,
  // counter = 0, three per example (shift y, shift x, flip), shift = floor(u·(2p+1)) − p.
  const [n, c, h, w, pad] = [16, 3, 5, 6, 2];
  const ds = patterned(n, c, h, w);
  const mean = [0.1, 0.2, 0.3], std = [0.5, 0.6, 0.7];
  const seed = 9;
  manualSeed(seed);
  const loader = new DataLoader(ds, { batchSize: 5, shuffle: false, mean, std, augment: { crop: pad, flip: true } });
  const x = new Float32Array(n * c * h * w);
  let offset = 0;
  for (const batch of loader.epoch()) {
    x.set(batch.x.dataSync(), offset);
    offset += batch.x.size;
    batch.x.dispose();
  }
  let shifted = 0;
  for (let i = 0; i < n; i++) {
    const dy = Math.floor(uniform(seed, 3 * i) * (2 * pad + 1)) - pad;
    const dx = Math.floor(uniform(seed, 3 * i + 1) * (2 * pad + 1)) - pad;
    const mirror = uniform(seed, 3 * i + 2) < 0.5;
    if (dy !== 0 || dx !== 0) shifted++;
    for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let col = 0; col < w; col++) {
      const sy = y + dy, sx = (mirror ? w - 1 - col : col) + dx;
      const raw = sy >= 0 && sy < h && sx >= 0 && sx < w ? ds.images[((i * c + ch) * h + sy) * w + sx] : 0;
      const expected = (raw / 255 - mean[ch]) / std[ch];
      const got = x[((i * c + ch) * h + y) * w + col];
      assert.ok(Math.abs(got - expected) < 1e-6, `image ${i} (${dy},${dx},${mirror}) ch ${ch} (${y},${col}): ${got} vs ${expected}`);
    }
  }
  assert.ok(shifted > 0, "some crops should move the image");
});

test("loader: epochAsync yields exactly the batches of epoch()", async () => {
  const ds = patterned(11, 1, 4, 4);
  const options = { batchSize: 4, augment: { crop: 1, flip: true } };
  manualSeed(21);
  const syncBatches = [...new DataLoader(ds, options).epoch()].map((b) => ({ x: Array.from(b.x.dataSync()), labels: Array.from(b.labels), index: b.index, t: b.x }));
  manualSeed(21);
  const asyncBatches: typeof syncBatches = [];
  for await (const b of new DataLoader(ds, options).epochAsync()) {
    asyncBatches.push({ x: Array.from(b.x.dataSync()), labels: Array.from(b.labels), index: b.index, t: b.x });
    await new Promise((resolve) => setTimeout(resolve, 0)); // let the next batch be prepared meanwhile
  }
  assert.is(asyncBatches.length, 3);
  for (let i = 0; i < 3; i++) {
    assert.equal(asyncBatches[i].x, syncBatches[i].x, `batch ${i}`);
    assert.equal(asyncBatches[i].labels, syncBatches[i].labels);
    assert.is(asyncBatches[i].index, i);
  }
  for (const b of [...syncBatches, ...asyncBatches]) b.t.dispose();
});

// ---- locating datasets ----

/** An in-memory DataFs over a path → bytes map. */
function memoryFs(files: Record<string, Uint8Array>): DataFs & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    exists: async (path) => Object.hasOwn(files, path),
    read: async (path) => {
      reads.push(path);
      if (!Object.hasOwn(files, path)) throw new Error(`no file ${path}`);
      return files[path];
    },
  };
}

const idxNames = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
const withAll = (root: string, suffix = "") => Object.fromEntries(idxNames.map((f) => [`${root}/${f}${suffix}`, new Uint8Array(0)]));

test("locateDataset: explicit path beats cache beats system dir", async () => {
  const places = { explicitPath: "/my/data", cacheDir: "/home/u/.cache/retrograd", systemDir: "/sys/ds" };
  const all = { ...withAll("/my/data"), ...withAll("/home/u/.cache/retrograd/mnist", ".gz"), ...withAll("/sys/ds/mnist") };
  assert.is((await locateDataset("mnist", places, memoryFs(all))).dir, "/my/data");
  const noExplicit = { ...withAll("/home/u/.cache/retrograd/mnist", ".gz"), ...withAll("/sys/ds/mnist") };
  const fromCache = await locateDataset("mnist", places, memoryFs(noExplicit));
  assert.is(fromCache.dir, "/home/u/.cache/retrograd/mnist");
  assert.equal(fromCache.files.test, ["/home/u/.cache/retrograd/mnist/t10k-images-idx3-ubyte.gz", "/home/u/.cache/retrograd/mnist/t10k-labels-idx1-ubyte.gz"]);
  assert.is((await locateDataset("mnist", places, memoryFs(withAll("/sys/ds/mnist")))).dir, "/sys/ds/mnist");
  // The explicit path may also be a parent holding <name>/.
  assert.is((await locateDataset("mnist", { explicitPath: "/my" }, memoryFs(withAll("/my/mnist")))).dir, "/my/mnist");
  // Default system dir.
  assert.is((await locateDataset("mnist", {}, memoryFs(withAll("/usr/share/datasets/mnist")))).dir, "/usr/share/datasets/mnist");
});

test("locateDataset: an incomplete directory is skipped; only the requested split is needed", async () => {
  const partial = { "/my/data/t10k-images-idx3-ubyte": new Uint8Array(0), "/my/data/t10k-labels-idx1-ubyte.gz": new Uint8Array(0) };
  const fs = memoryFs({ ...partial, ...withAll("/sys/ds/kmnist") });
  assert.is((await locateDataset("kmnist", { explicitPath: "/my/data", systemDir: "/sys/ds" }, fs)).dir, "/sys/ds/kmnist");
  const testOnly = await locateDataset("kmnist", { explicitPath: "/my/data", systemDir: "/sys/ds", splits: ["test"] }, fs);
  assert.is(testOnly.dir, "/my/data");
  assert.equal(testOnly.files, { test: ["/my/data/t10k-images-idx3-ubyte", "/my/data/t10k-labels-idx1-ubyte.gz"] });
});

test("locateDataset: CIFAR files inside the archive's folder", async () => {
  const names = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"];
  const files = Object.fromEntries(names.map((f) => [`/c/cifar10/cifar-10-batches-bin/${f}`, new Uint8Array(0)]));
  const found = await locateDataset("cifar10", { cacheDir: "/c" }, memoryFs(files));
  assert.is(found.dir, "/c/cifar10/cifar-10-batches-bin");
  assert.is(found.files.train?.length, 5);
});

test("locateDataset: not found lists every place and how to get the files", async () => {
  const places = { explicitPath: "/my/data", cacheDir: "/home/u/.cache/retrograd", systemDir: "/sys/ds" };
  await throwsDataset(() => locateDataset("fashion-mnist", places, memoryFs({})),
    'dataset "fashion-mnist"', "/my/data", "/home/u/.cache/retrograd/fashion-mnist", "/sys/ds/fashion-mnist",
    "train-images-idx3-ubyte[.gz]", "apt-get install -y dataset-fashion-mnist", "--data DIR", "fashion-mnist.s3");
  await throwsDataset(() => locateDataset("cifar10", {}, memoryFs({})), "/usr/share/datasets/cifar10", "cifar-10-binary.tar.gz");
  await throwsDataset(() => locateDataset("imagenet", {}, memoryFs({})), "unknown dataset", "imagenet", "fashion-mnist");
});

test("loadDataset reads IDX (gzipped) and CIFAR splits through the DataFs", async () => {
  const fs = memoryFs({
    "/d/mnist/t10k-images-idx3-ubyte.gz": fixture("images-5x4x3-idx3-ubyte.gz"),
    "/d/mnist/t10k-labels-idx1-ubyte": fixture("labels-5-idx1-ubyte"),
    "/d/cifar10/cifar-10-batches-bin/test_batch.bin": fixture("cifar10-3.bin"),
    "/d/cifar100/train.bin": fixture("cifar100-2.bin"),
  });
  const mnist = await loadDataset("mnist", "test", { cacheDir: "/d" }, fs);
  assert.equal([mnist.n, mnist.height, mnist.width, mnist.name], [5, 4, 3, "mnist-test"]);
  assert.equal(Array.from(mnist.labels), [3, 0, 9, 1, 7]);
  assert.is(mnist.images[59], idxPixel(4, 3, 2));
  const cifar = await loadDataset("cifar10", "test", { cacheDir: "/d" }, fs);
  assert.equal([cifar.n, cifar.channels, cifar.classes], [3, 3, 10]);
  const cifar100 = await loadDataset("cifar100", "train", { cacheDir: "/d" }, fs);
  assert.equal(Array.from(cifar100.labels), [42, 99]);
  // Damage is reported with the path the file was found at.
  const broken = memoryFs({
    "/d/mnist/t10k-images-idx3-ubyte": fixture("images-5x4x3-idx3-ubyte").subarray(0, 40),
    "/d/mnist/t10k-labels-idx1-ubyte": fixture("labels-5-idx1-ubyte"),
  });
  await throwsDataset(() => loadDataset("mnist", "test", { cacheDir: "/d" }, broken), "/d/mnist/t10k-images-idx3-ubyte", "truncated");
});

// ---- the real Fashion-MNIST, when installed ----

const realDir = "/usr/share/datasets/fashion-mnist";
if (existsSync(realDir)) {
  test("real Fashion-MNIST test split (from /usr/share/datasets)", async () => {
    const nodeFs: DataFs = {
      exists: (path) => stat(path).then(() => true, () => false),
      read: async (path) => new Uint8Array(await readFile(path)),
    };
    const ds = await loadDataset("fashion-mnist", "test", {}, nodeFs);
    assert.equal([ds.n, ds.channels, ds.height, ds.width, ds.classes], [10000, 1, 28, 28, 10]);
    assert.is(ds.images.length, 10000 * 28 * 28);
    const counts = new Array<number>(10).fill(0);
    for (const label of ds.labels) counts[label]++;
    assert.equal(counts, new Array<number>(10).fill(1000));
  });
} else {
  console.log(`skipping the real Fashion-MNIST test: ${realDir} is absent (apt-get install -y dataset-fashion-mnist)`);
}

test.run();
