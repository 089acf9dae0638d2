/**
 * The demo page: reads the settings, drives the training worker (web/worker.ts), and draws
 * what it reports — loss and accuracy charts, a progress bar, a status line that says which
 * backend and how many threads really compute, the test-image grid, and the weights download.
 * `window.demo` mirrors the run's state for automated checks (test/browser.test.ts).
 */
import { LineChart } from "./chart.ts";
import { drawPredictions } from "./grid.ts";
import type { FromWorker, ToWorker, TrainSettings } from "./protocol.ts";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);
const select = (id: string) => $<HTMLSelectElement>(id);
const button = (id: string) => $<HTMLButtonElement>(id);

type Phase = "starting" | "idle" | "loading" | "training" | "stopping" | "stopped" | "done" | "error";
const demo = {
  phase: "starting" as Phase,
  backend: "",
  threads: 1,
  webgpu: null as string | null,
  losses: [] as number[],
  testAccuracy: null as number | null,
  sha256: null as string | null,
};
(globalThis as { demo?: typeof demo }).demo = demo;

const lossChart = new LineChart($("loss-chart"), { title: "Loss", xLabel: "step", format: (v) => v.toFixed(2) }, [
  { name: "train", color: "#0969da" },
  { name: "test", color: "#cf222e", dots: true },
]);
const accuracyChart = new LineChart(
  $("accuracy-chart"),
  { title: "Accuracy", xLabel: "step", yMin: 0, yMax: 1, format: (v) => `${Math.round(v * 100)}%` },
  [{ name: "train (running)", color: "#1a7f37" }, { name: "test", color: "#cf222e", dots: true }],
);
addEventListener("resize", () => {
  lossChart.draw();
  accuracyChart.draw();
});

const worker = new Worker(new URL("./worker.mjs", import.meta.url), { type: "module" });
const send = (message: ToWorker) => worker.postMessage(message);
let dropped: { name: string; bytes: ArrayBuffer }[] = [];
let runSteps = 0;

function setPhase(phase: Phase): void {
  demo.phase = phase;
  const busy = phase === "loading" || phase === "training" || phase === "stopping" || phase === "starting";
  button("train").disabled = busy;
  button("stop").disabled = phase !== "training";
  button("resume").disabled = phase !== "stopped";
  button("download").disabled = !(phase === "stopped" || phase === "done");
  for (const el of $("settings").querySelectorAll<HTMLInputElement | HTMLSelectElement>("input, select")) {
    el.disabled = busy || (el.id === "alpha" && !input("powergrad").checked);
  }
  updateBackendOption();
}

function message(text: string, error = false): void {
  $("message").textContent = text;
  $("message").classList.toggle("error", error);
}

function status(backend: string, threads: number): void {
  const isolated = globalThis.crossOriginIsolated;
  const plural = `${threads} thread${threads === 1 ? "" : "s"}`;
  const why = !isolated
    ? "not cross-origin isolated, so no SharedArrayBuffer and no wasm threads"
    : backend.startsWith("WebGPU")
    ? "the GPU computes; the CPU threads idle"
    : threads === 1
    ? `cross-origin isolated; up to ${demo.threads} thread${demo.threads === 1 ? "" : "s"} available`
    : "cross-origin isolated: workers share one wasm memory";
  $("status").textContent = `Backend: ${backend} · ${plural} · ${why}`;
}

function updateBackendOption(): void {
  const option = select("backend").options[1];
  option.disabled = demo.webgpu === null;
  option.textContent = demo.webgpu === null
    ? demo.phase === "starting" ? "WebGPU (checking…)" : "WebGPU (no adapter)"
    : `WebGPU (${demo.webgpu})`;
}

function settings(): TrainSettings {
  const number = (id: string, min: number, max: number) => Math.min(max, Math.max(min, Number(input(id).value) || min));
  return {
    model: select("model").value as TrainSettings["model"],
    backend: select("backend").value as TrainSettings["backend"],
    dataset: select("dataset").value as TrainSettings["dataset"],
    files: select("dataset").value === "files" ? dropped : undefined,
    powerGrad: input("powergrad").checked ? number("alpha", 0.05, 1) : 1,
    threads: Math.round(number("threads", 1, demo.threads)),
    steps: Math.round(number("steps", 1, 100000)),
    batchSize: Math.round(number("batch", 1, 1024)),
    lr: number("lr", 1e-4, 1),
    evalImages: Math.round(number("eval", 1, 10000)),
    seed: 0,
  };
}

function progress(step: number, text: string): void {
  const bar = $<HTMLProgressElement>("progress");
  bar.max = Math.max(1, runSteps);
  bar.value = step;
  $("progress-text").textContent = text;
}

worker.onmessage = (event: MessageEvent<FromWorker>) => {
  const m = event.data;
  switch (m.type) {
    case "ready":
      demo.webgpu = m.webgpu;
      demo.threads = m.threads;
      input("threads").max = String(m.threads);
      input("threads").value = String(m.threads);
      status("CPU (WebAssembly SIMD)", m.threads);
      setPhase("idle");
      message("Ready. Choose settings and press Train.");
      break;
    case "status":
      message(m.text);
      break;
    case "started":
      demo.backend = m.backend;
      status(m.backend, m.threads);
      setPhase("training");
      message(`Training ${m.parameters.toLocaleString()} parameters on ${m.trainImages.toLocaleString()} images; ` +
        `evaluating on ${m.testImages.toLocaleString()} test images at the end.`);
      break;
    case "step": {
      const r = m.record;
      demo.losses.push(r.loss);
      lossChart.add(0, r.step, r.loss);
      accuracyChart.add(0, r.step, r.accuracy);
      progress(r.step, `step ${r.step} / ${m.steps} · loss ${r.loss.toFixed(3)} · ${Math.round(r.imagesPerSec)} images/s`);
      break;
    }
    case "epoch":
      demo.testAccuracy = m.record.testAccuracy;
      lossChart.add(1, m.record.step, m.record.testLoss);
      accuracyChart.add(1, m.record.step, m.record.testAccuracy);
      message(`Test accuracy ${(100 * m.record.testAccuracy).toFixed(1)}%, test loss ${m.record.testLoss.toFixed(3)} after ${m.record.step} steps.`);
      break;
    case "stopped":
    case "done":
      setPhase(m.type);
      drawPredictions($("grid"), m.predictions);
      $("grid-caption").textContent = `(first ${m.predictions.n} test images, predictions after ${m.step} steps)`;
      if (m.type === "stopped") {
        message(`Stopped after ${m.step} steps. Resume continues the same run.`);
        $("progress-text").textContent = `stopped at step ${m.step} / ${runSteps}`;
      } else {
        $("progress-text").textContent = `done: ${m.step} steps`;
      }
      break;
    case "weights": {
      demo.sha256 = m.sha256;
      const url = URL.createObjectURL(new Blob([m.bytes as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = m.name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      $("weights").hidden = false;
      $("weights-size").textContent = `${m.name}, ${(m.bytes.byteLength / 1024).toFixed(0)} KiB`;
      $("weights-sha").textContent = m.sha256;
      break;
    }
    case "error":
      setPhase(demo.phase === "starting" ? "idle" : "error");
      button("train").disabled = false;
      message(`Error: ${m.message}`, true);
      break;
  }
};
worker.onerror = (e) => {
  setPhase("error");
  message(`Worker failed: ${e.message}`, true);
};

button("train").onclick = () => {
  const s = settings();
  if (s.dataset === "files" && dropped.length === 0) return message("Drop IDX files first.", true);
  runSteps = s.steps;
  demo.losses = [];
  demo.testAccuracy = null;
  demo.sha256 = null;
  $("weights").hidden = true;
  lossChart.clear();
  accuracyChart.clear();
  lossChart.xMax = accuracyChart.xMax = s.steps;
  progress(0, "loading…");
  setPhase("loading");
  send({ type: "train", settings: s });
};
button("stop").onclick = () => {
  setPhase("stopping");
  message("Stopping after this step…");
  send({ type: "stop" });
};
button("resume").onclick = () => {
  setPhase("training");
  message("Resumed.");
  send({ type: "resume" });
};
button("download").onclick = () => send({ type: "download" });
input("powergrad").onchange = () => (input("alpha").disabled = !input("powergrad").checked);
select("dataset").onchange = () => ($("drop").hidden = select("dataset").value !== "files");

const drop = $("drop");
drop.ondragover = (e) => {
  e.preventDefault();
  drop.classList.add("over");
};
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = async (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const files = [...(e.dataTransfer?.files ?? [])];
  dropped = await Promise.all(files.map(async (f) => ({ name: f.name, bytes: await f.arrayBuffer() })));
  drop.textContent = `Dropped: ${dropped.map((f) => f.name).join(", ")}`;
};
setPhase("starting");
