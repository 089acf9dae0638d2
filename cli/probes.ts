/**
 * `retrograd train --probe …`: the probe flags, the probe settings a run keeps in its
 * config.json (so a resumed run goes on probing), and probes.jsonl, one line per probe and
 * step, trimmed on resume like metrics.jsonl (run_dir.ts trimLog) so that an interrupted
 * run's log equals an uninterrupted one's. The probes themselves are src/analysis/probes.ts.
 */
import { join } from "node:path";
import { PROBE_NAMES, parseProbeSpec, Prober, type ProbeRecord } from "../src/analysis/probes.ts";
import type { StepProbe } from "../src/train/trainer.ts";
import type { Module } from "../src/nn/module.ts";
import { stringifyRecord } from "../src/io/records.ts";
import { CheckpointError, ValueError } from "../src/errors.ts";
import type { Fields } from "../src/io/fields.ts";
import { type Flag, type FlagValues, UsageError } from "./flags.ts";
import { append } from "./files.ts";

export const PROBE_LOG = "probes.jsonl";

export const PROBE_FLAGS: Flag[] = [
  {
    name: "probe", type: "string", default: undefined,
    help: `probes of the backward pass, written to probes.jsonl: a list of ${PROBE_NAMES.join(", ")} or all, each every --probe-every steps or name@k every k (e.g. landscape,ics,curvature@500)`,
  },
  { name: "probe-every", type: "int", default: 100, min: 1, help: "steps between probes (for probes without @k)" },
  { name: "probe-layers", type: "list", default: undefined, help: "modules whose outputs the activations probe summarises (default: every normalisation layer, else every conv and hidden linear layer)" },
];

/** What config.json keeps of the probe flags. */
export interface ProbeSettings {
  spec: string;
  every: number;
  layers?: string[];
}

/** The probe settings from the flags (undefined without --probe); a bad list is a UsageError naming --probe. */
export function probeSettingsFrom(flags: FlagValues): ProbeSettings | undefined {
  const spec = flags.probe as string | undefined;
  if (spec === undefined) {
    const stray = ["probe-every", "probe-layers"].filter((f) => (flags as { _given?: string[] })._given?.includes(f));
    if (stray.length > 0) throw new UsageError(`${stray.map((f) => `--${f}`).join(", ")} given without --probe`);
    return undefined;
  }
  const settings: ProbeSettings = { spec, every: flags["probe-every"] as number };
  if (flags["probe-layers"] !== undefined) settings.layers = flags["probe-layers"] as string[];
  prober(settings); // checked now, not at the first probed step
  return settings;
}

/** config.json's probe settings, checked field by field (a CheckpointError names the field); the list is parsed too. */
export function readProbeSettings(f: Fields): ProbeSettings {
  const settings: ProbeSettings = { spec: f.string("spec"), every: f.int("every", 1) };
  if (f.has("layers")) settings.layers = f.strings("layers");
  try {
    parseProbeSpec(settings.spec, settings.every);
  } catch (error) {
    if (error instanceof ValueError) throw new CheckpointError(`${f.source}: ${f.path}spec: ${error.message}`);
    throw error;
  }
  return settings;
}

/** The Prober of the settings; a bad list is a UsageError naming --probe. */
export function prober(settings: ProbeSettings): Prober {
  try {
    return new Prober(parseProbeSpec(settings.spec, settings.every), { activationLayers: settings.layers });
  } catch (error) {
    if (error instanceof ValueError) throw new UsageError(`--probe: ${error.message}`);
    throw error;
  }
}

/**
 * The trainer's probe callback: measures due steps and appends their records to the run's
 * probes.jsonl. The layers named in the settings must exist in `model` (a UsageError lists them).
 */
export function probeWriter(settings: ProbeSettings, outDir: string, model: Module, onRecords?: (records: ProbeRecord[]) => void): StepProbe {
  const probes = prober(settings);
  checkProbeLayers(model, settings.layers);
  const path = join(outDir, PROBE_LOG);
  return {
    due: (step) => probes.due(step),
    measure: async (step) => {
      const records = await probes.measure(step);
      await append(path, records.map((r) => stringifyRecord(r) + "\n").join(""));
      onRecords?.(records);
    },
  };
}

/** Every module named by --probe-layers exists in `model` (else a UsageError lists the model's modules). */
export function checkProbeLayers(model: Module, layers: readonly string[] = []): void {
  const modules = new Set([...model.namedModules()].map(([name]) => name));
  const unknown = layers.filter((name) => !modules.has(name));
  if (unknown.length > 0) {
    throw new UsageError(`--probe-layers: the model has no module ${unknown.join(", ")}; its modules: ${[...modules].filter(Boolean).join(", ")}`);
  }
}
