/**
 * The data layer's error type. Every problem with a dataset file (truncated, wrong magic,
 * corrupt gzip, labels out of range, files not found) is a DatasetError whose message names
 * the file or directory and what was wrong with it. It extends RetrogradError, so catching
 * that still catches everything retrograd raises.
 */
import { RetrogradError } from "../errors.ts";

export class DatasetError extends RetrogradError {}
