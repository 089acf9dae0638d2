/**
 * The data layer: readers for dataset files (IDX, CIFAR binary, gzip), the in-memory Dataset
 * and its helpers, the DataLoader that makes normalised, augmented batches, and the dataset
 * registry and local-file resolution. Everything here takes bytes or an injected DataFs, so it
 * runs unchanged under Node, Deno and browsers; the CLI supplies the file access.
 */
export { DatasetError } from "./errors.ts";
export { gunzip, isGzip } from "./gzip.ts";
export { idxDataset, parseIdx, readIdx } from "./idx.ts";
export type { IdxArray } from "./idx.ts";
export { parseCifar } from "./cifar.ts";
export type { CifarOptions } from "./cifar.ts";
export { checkLabels, concatDatasets, imageSize, subset, synthetic } from "./dataset.ts";
export type { Dataset, SyntheticOptions } from "./dataset.ts";
export { DataLoader } from "./loader.ts";
export type { AugmentOptions, Batch, DataLoaderOptions } from "./loader.ts";
export { candidateDirs, DATASETS, datasetSpec, loadDataset, locateDataset } from "./sources.ts";
export type { DataFs, DatasetSpec, LocatedDataset, LocateOptions, Split } from "./sources.ts";
