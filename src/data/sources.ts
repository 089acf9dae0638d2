/**
 * Where dataset files come from: the registry of known datasets (file names, download URLs,
 * Debian packages) and the search order for a local copy — an explicit path, then the cache
 * directory, then the system directory (/usr/share/datasets, where Debian's dataset-*
 * packages put them). It is pure logic over an injected `DataFs`, because src/ may not touch
 * a file system: the CLI passes a Node/Deno adapter, a browser could pass one over fetch or
 * IndexedDB. Downloading is the CLI's job; this module only says what to fetch and from where.
 */
import type { Dataset } from "./dataset.ts";
import { concatDatasets } from "./dataset.ts";
import { DatasetError } from "./errors.ts";
import { gunzip, isGzip } from "./gzip.ts";
import { idxDataset, readIdx } from "./idx.ts";
import { MAX_CIFAR_FILE_BYTES, parseCifar } from "./cifar.ts";

/** The two file operations the resolver needs; paths use "/" separators. */
export interface DataFs {
  exists(path: string): Promise<boolean>;
  read(path: string): Promise<Uint8Array>;
}

export type Split = "train" | "test";

export interface DatasetSpec {
  name: string;
  format: "idx" | "cifar10" | "cifar100";
  /**
   * Base names of the files of each split, in order. IDX splits are [images, labels]; CIFAR
   * splits are record files joined in order. Each may also be present with a ".gz" suffix.
   */
  files: Record<Split, string[]>;
  /** Sub-directories the files may sit in, as the official archives unpack (e.g. "cifar-10-batches-bin"). */
  subdirs: string[];
  /**
   * Where to download. For IDX datasets, `baseUrl` + a file name + ".gz"; for CIFAR, one
   * tar.gz `archiveUrl` that unpacks to the files inside `subdirs[0]`.
   */
  download: { baseUrl?: string; archiveUrl?: string };
  /**
   * sha256 of each downloaded file, keyed by its name. Left undefined for every dataset: we
   * do not know the official digests for certain (the publishers list MD5 sums, if anything),
   * and a wrong checksum is worse than none. The CLI should verify sizes/parsing instead.
   */
  sha256?: Record<string, string>;
  /** The Debian package installing the files into /usr/share/datasets/<name>, if one exists. */
  debianPackage?: string;
}

const IDX_FILES: Record<Split, string[]> = {
  train: ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
  test: ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
};

export const DATASETS: Record<string, DatasetSpec> = {
  "fashion-mnist": {
    name: "fashion-mnist",
    format: "idx",
    files: IDX_FILES,
    subdirs: [],
    download: { baseUrl: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" },
    sha256: undefined,
    debianPackage: "dataset-fashion-mnist",
  },
  mnist: {
    name: "mnist",
    format: "idx",
    files: IDX_FILES,
    subdirs: [],
    // The torchvision mirror; the original http://yann.lecun.com/exdb/mnist/ is often unavailable.
    download: { baseUrl: "https://ossci-datasets.s3.amazonaws.com/mnist/" },
    sha256: undefined,
  },
  kmnist: {
    name: "kmnist",
    format: "idx",
    files: IDX_FILES,
    subdirs: [],
    download: { baseUrl: "http://codh.rois.ac.jp/kmnist/dataset/kmnist/" },
    sha256: undefined,
  },
  cifar10: {
    name: "cifar10",
    format: "cifar10",
    files: {
      train: ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"],
      test: ["test_batch.bin"],
    },
    subdirs: ["cifar-10-batches-bin"],
    download: { archiveUrl: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" },
    sha256: undefined,
  },
  cifar100: {
    name: "cifar100",
    format: "cifar100",
    files: { train: ["train.bin"], test: ["test.bin"] },
    subdirs: ["cifar-100-binary"],
    download: { archiveUrl: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz" },
    sha256: undefined,
  },
};

export interface LocateOptions {
  /** A directory the user named (--data DIR); it may hold the files or a <name>/ folder with them. */
  explicitPath?: string;
  /** The per-user cache; the dataset is looked for in cacheDir/<name>. */
  cacheDir?: string;
  /** Where system packages install datasets (default /usr/share/datasets); looked in as systemDir/<name>. */
  systemDir?: string;
  /** Which splits must be present (default both). */
  splits?: Split[];
}

export interface LocatedDataset {
  /** The directory holding the files. */
  dir: string;
  /** Full paths of each requested split's files, in the spec's order (each plain or .gz, whichever exists). */
  files: Partial<Record<Split, string[]>>;
}

export function datasetSpec(name: string): DatasetSpec {
  const spec = Object.hasOwn(DATASETS, name) ? DATASETS[name] : undefined;
  if (!spec) {
    throw new DatasetError(`unknown dataset "${name}"; known datasets: ${Object.keys(DATASETS).join(", ")}`);
  }
  return spec;
}

/** The directories tried, in order, for `name` (each also with the spec's sub-directories). */
export function candidateDirs(spec: DatasetSpec, options: LocateOptions): string[] {
  const roots: string[] = [];
  if (options.explicitPath !== undefined) roots.push(options.explicitPath, joinPath(options.explicitPath, spec.name));
  if (options.cacheDir !== undefined) roots.push(joinPath(options.cacheDir, spec.name));
  roots.push(joinPath(options.systemDir ?? "/usr/share/datasets", spec.name));
  const dirs: string[] = [];
  for (const root of roots) {
    for (const dir of [root, ...spec.subdirs.map((sub) => joinPath(root, sub))]) {
      if (!dirs.includes(dir)) dirs.push(dir);
    }
  }
  return dirs;
}

/**
 * Find the first directory holding all files of the requested splits. Checks, in order: the
 * explicit path (and explicitPath/<name>), cacheDir/<name>, systemDir/<name> — each also in
 * the archive's sub-directory — accepting each file plain or as .gz. Throws a DatasetError
 * listing every directory tried, what was missing, and how to get the files.
 */
export async function locateDataset(name: string, options: LocateOptions, fs: DataFs): Promise<LocatedDataset> {
  const spec = datasetSpec(name);
  const splits = options.splits ?? ["train", "test"];
  const tried: string[] = [];
  for (const dir of candidateDirs(spec, options)) {
    const files: Partial<Record<Split, string[]>> = {};
    const missing: string[] = [];
    for (const split of splits) {
      const found: string[] = [];
      for (const file of spec.files[split]) {
        const plain = joinPath(dir, file);
        const gzipped = `${plain}.gz`;
        if (await fs.exists(plain)) found.push(plain);
        else if (await fs.exists(gzipped)) found.push(gzipped);
        else missing.push(file);
      }
      files[split] = found;
    }
    if (missing.length === 0) return { dir, files };
    tried.push(`  ${dir}  (missing ${missing.map((f) => `${f}[.gz]`).join(", ")})`);
  }
  throw new DatasetError(
    `dataset "${name}" (${splits.join(" + ")}) not found. Looked in, in order:\n${tried.join("\n")}\n${howToGet(spec, options)}`,
  );
}

function howToGet(spec: DatasetSpec, options: LocateOptions): string {
  const ways: string[] = [];
  if (spec.debianPackage) ways.push(`on Debian/Ubuntu: apt-get install -y ${spec.debianPackage}`);
  const target = options.cacheDir !== undefined ? joinPath(options.cacheDir, spec.name) : `<cache dir>/${spec.name}`;
  if (spec.download.baseUrl) {
    const names = [...spec.files.train, ...spec.files.test].map((f) => `${f}.gz`).join(", ");
    ways.push(`download ${names} from ${spec.download.baseUrl} into ${target}`);
  }
  if (spec.download.archiveUrl) {
    ways.push(`download ${spec.download.archiveUrl} and unpack it into ${target}`);
  }
  ways.push("or pass --data DIR pointing at a directory that holds the files");
  return `To get it: ${ways.join("; ")}.`;
}

/** Locate `name` and read one split into memory (parsing and gunzipping as needed). */
export async function loadDataset(name: string, split: Split, location: LocateOptions, fs: DataFs): Promise<Dataset> {
  const spec = datasetSpec(name);
  const located = await locateDataset(name, { ...location, splits: [split] }, fs);
  const paths = located.files[split] ?? [];
  const datasetName = `${name}-${split}`;
  if (spec.format === "idx") {
    const [imagesPath, labelsPath] = paths;
    const [images, labels] = await Promise.all([
      fs.read(imagesPath).then((bytes) => readIdx(bytes, imagesPath)),
      fs.read(labelsPath).then((bytes) => readIdx(bytes, labelsPath)),
    ]);
    return idxDataset(images, labels, `${imagesPath} + ${labelsPath}`, datasetName);
  }
  const variant = spec.format === "cifar10" ? 10 : 100;
  const parts: Dataset[] = [];
  // One file at a time keeps at most one raw file alongside the parsed data.
  for (const path of paths) {
    let bytes = await fs.read(path);
    if (isGzip(bytes)) bytes = await gunzip(bytes, path, { maxBytes: MAX_CIFAR_FILE_BYTES });
    parts.push(parseCifar(bytes, { variant }, path, datasetName));
  }
  return parts.length === 1 ? parts[0] : concatDatasets(parts, datasetName);
}

function joinPath(dir: string, name: string): string {
  return dir === "" ? name : dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}
