/**
 * Loading a dataset for the CLI by name: locate it (--data, the cache, the system dataset
 * directory), read both splits, and know its normalisation constants. `synthetic` exists
 * only when asked for by name.
 */
import { DatasetError, datasetSpec, loadDataset, locateDataset, synthetic, type Dataset, type Split } from "../src/data/index.ts";
import { cacheDir, nodeFs } from "./files.ts";
import { downloadDataset } from "./download.ts";

/** Per-channel mean and std of pixel/255 over each training set. */
const NORMALISATION: Record<string, { mean: number[]; std: number[] }> = {
  "fashion-mnist": { mean: [0.286], std: [0.353] },
  mnist: { mean: [0.1307], std: [0.3081] },
  kmnist: { mean: [0.1918], std: [0.3483] },
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  cifar100: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
  synthetic: { mean: [0.5], std: [0.25] },
};

export const DATASET_NAMES = Object.keys(NORMALISATION);

export function normalisationOf(name: string): { mean: number[]; std: number[] } {
  return NORMALISATION[name];
}

export interface LoadedData {
  train: Dataset;
  test: Dataset;
  mean: number[];
  std: number[];
}

/**
 * Load both splits of `name`: from --data, the cache or the system dataset directory; if it is
 * in none of them, download it into the cache. With no network, the error says where we looked
 * and why the download failed. A test split without images is a DatasetError.
 */
export async function loadData(
  name: string, explicitPath: string | undefined, seed: number, log: { write(s: string): void } = process.stderr,
): Promise<LoadedData> {
  const { train, test, mean, std } = await loadSplits(name, explicitPath, seed, ["train", "test"], log);
  return { train: train!, test: test!, mean, std };
}

/** Only the test split (what `eval` needs): the training files are neither read nor decompressed. */
export async function loadTestData(
  name: string, explicitPath: string | undefined, log: { write(s: string): void } = process.stderr,
): Promise<{ test: Dataset; mean: number[]; std: number[] }> {
  const { test, mean, std } = await loadSplits(name, explicitPath, 0, ["test"], log);
  return { test: test!, mean, std };
}

async function loadSplits(
  name: string, explicitPath: string | undefined, seed: number, splits: Split[], log: { write(s: string): void },
): Promise<Partial<Record<Split, Dataset>> & { mean: number[]; std: number[] }> {
  const { mean, std } = NORMALISATION[name];
  if (name === "synthetic") {
    const spec = { channels: 1, height: 28, width: 28, classes: 10 };
    return { train: synthetic({ ...spec, n: 2048, seed }), test: synthetic({ ...spec, n: 512, seed, split: "test" }), mean, std };
  }
  const where = { explicitPath, cacheDir: cacheDir(), splits };
  try {
    await locateDataset(name, where, nodeFs);
  } catch (notFound) {
    if (!(notFound instanceof DatasetError)) throw notFound;
    try {
      await downloadDataset(datasetSpec(name), where.cacheDir, log);
    } catch (failed) {
      throw new DatasetError(`${notFound.message}\nA download was tried and failed: ${(failed as Error).message}`);
    }
  }
  const loaded = await Promise.all(splits.map((split) => loadDataset(name, split, where, nodeFs)));
  const out: Partial<Record<Split, Dataset>> = Object.fromEntries(splits.map((split, i) => [split, loaded[i]]));
  if (out.test && out.test.n === 0) {
    throw new DatasetError(`dataset ${name}: no test images (its test split, ${out.test.name ?? "test"}, is empty); nothing to evaluate on`);
  }
  return { ...out, mean, std };
}
