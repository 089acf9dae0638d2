/**
 * Messages between the page (web/app.ts) and the training worker (web/worker.ts). Training
 * runs in a module worker so the page never freezes, whatever the model costs per step.
 */
import type { EpochRecord, StepRecord } from "../src/train/trainer.ts";

export interface TrainSettings {
  model: "mlp" | "resnet20";
  backend: "cpu" | "webgpu";
  /** "fashion-mnist": fetched from /datasets/; "files": the IDX files the user dropped. */
  dataset: "fashion-mnist" | "files";
  files?: { name: string; bytes: ArrayBuffer }[];
  /** PowerGrad α; 1 is plain cross-entropy. */
  powerGrad: number;
  /** CPU backend threads (workers sharing one wasm memory; needs cross-origin isolation). */
  threads: number;
  steps: number;
  batchSize: number;
  lr: number;
  /** How many test images the end-of-run evaluation uses (ResNet-20 on all 10 000 is slow on a CPU). */
  evalImages: number;
  seed: number;
}

export type ToWorker =
  | { type: "train"; settings: TrainSettings }
  | { type: "stop" }
  | { type: "resume" }
  | { type: "download" };

export interface Predictions {
  /** n images of height×width bytes (first channel). */
  pixels: Uint8Array;
  n: number;
  height: number;
  width: number;
  labels: number[];
  predicted: number[];
  classNames: string[];
}

export type FromWorker =
  /** `threads`: the most the CPU backend can use here (1 without workers or shared memory). */
  | { type: "ready"; webgpu: string | null; isolated: boolean; threads: number }
  | { type: "status"; text: string }
  | { type: "started"; backend: string; threads: number; parameters: number; trainImages: number; testImages: number }
  | { type: "step"; record: StepRecord; steps: number }
  | { type: "epoch"; record: EpochRecord }
  | { type: "stopped"; step: number; predictions: Predictions }
  | { type: "done"; step: number; predictions: Predictions }
  | { type: "weights"; bytes: Uint8Array; sha256: string; name: string }
  | { type: "error"; message: string };
