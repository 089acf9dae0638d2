"""Tables of the BatchNorm experiment (bench/batchnorm.sh, docs/batchnorm.md): mean ± sample
standard deviation over seeds of each run's outcomes, read from the copied run logs
(docs/data/batchnorm/<condition>-s<seed>/{metrics,probes}.jsonl). Standard library only.

    python3 bench/batchnorm_report.py [docs/data/batchnorm [CONDITION...]]

CONDITIONs (directory names without -s<seed>) choose the columns and their order; default: all.

    python3 bench/batchnorm_report.py --same RUN_A RUN_B

says whether two runs' metrics.jsonl and probes.jsonl hold the same records once the timings
and the curvature probe's records are left out: a run repeated with the curvature probe added
must equal the first (probes change nothing).

Per run: the last evaluation's test accuracy and loss, the mean training loss (batch loss of
the step records) over each 50 steps, and over the probed steps (all, and the second half of training) the mean of
Santurkar et al.'s landscape measures; per layer, the mean internal covariate shift
‖G − G′‖₂, the shift relative to ‖G‖₂ and cos(G, G′); how much the activations'
distribution moves over training: the standard deviation over probed steps of each layer's
activation mean and of its activation standard deviation, averaged over layers; and where the
curvature probe ran, at each of its steps the top Hessian eigenvalue's estimate (with how many
seeds' power iterations converged), the Hutchinson trace and its standard error.
"""
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def read_jsonl(path):
    def number(value):
        if isinstance(value, str):
            return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value)
        return value

    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            records.append({k: number(v) for k, v in json.loads(line).items()})
    return records


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if all(isinstance(v, bool) for v in values):
        return f"{sum(values)} of {len(values)}"
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    if all(isinstance(v, int) for v in values):
        return f"{mean:.0f} ± {std:.0f}"
    if max(abs(mean), std) >= 100:
        return f"{mean:.0f} ± {std:.0f}"
    return f"{mean:.3g} ± {std:.2g}"


def run_outcomes(run_dir):
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    probes = read_jsonl(run_dir / "probes.jsonl")
    epochs = [r for r in metrics if r["type"] == "epoch"]
    steps = [r for r in metrics if r["type"] == "step"]
    last = epochs[-1] if epochs else None
    total = max((r["step"] for r in steps), default=0)
    out = {
        "steps": total,
        "test accuracy %": 100 * last["testAccuracy"] if last else None,
        "test loss": last["testLoss"] if last else None,
    }
    for start in range(0, total, 50):
        window = [r["loss"] for r in steps if start < r["step"] <= start + 50]
        out[f"train loss, steps {start + 1}–{start + 50}"] = statistics.fmean(window) if window else None
    landscape = [r for r in probes if r["probe"] == "landscape"]
    late = [r for r in landscape if r["step"] > total / 2]
    for key in ["lossVariation", "gradientPredictiveness", "effectiveBetaSmoothness", "gradNorm"]:
        out[f"{key} (all)"] = statistics.fmean(r[key] for r in landscape) if landscape else None
        out[f"{key} (2nd half)"] = statistics.fmean(r[key] for r in late) if late else None
    ics = [r for r in probes if r["probe"] == "ics"]
    layers = defaultdict(lambda: defaultdict(list))
    for r in ics:
        for i, layer in enumerate(r["layers"]):
            layers[i]["name"] = layer["name"]
            layers[i]["shift"].append(layer["shift"])
            layers[i]["relative"].append(layer["shift"] / layer["gradNorm"] if layer["gradNorm"] > 0 else math.nan)
            layers[i]["cosine"].append(layer["cosine"])
    out["ics"] = {i: {k: (v if k == "name" else statistics.fmean(v)) for k, v in d.items()} for i, d in layers.items()}
    activations = [r for r in probes if r["probe"] == "activations"]
    if len(activations) > 1:
        count = len(activations[0]["layers"])
        out["activation mean drift"] = statistics.fmean(statistics.pstdev(r["layers"][i]["mean"] for r in activations) for i in range(count))
        out["activation std drift"] = statistics.fmean(statistics.pstdev(r["layers"][i]["std"] for r in activations) for i in range(count))
    for r in (r for r in probes if r["probe"] == "curvature"):
        out[f"top Hessian eigenvalue, step {r['step']}"] = r["topEigenvalue"]
        out[f"power iteration converged, step {r['step']}"] = bool(r["converged"])
        out[f"Hessian trace, step {r['step']}"] = r["trace"]
        out[f"Hessian trace's standard error, step {r['step']}"] = r["traceStandardError"]
    return out


def same_records(run_a, run_b):
    def records(path):
        kept = []
        for r in read_jsonl(path):
            if r.get("probe") != "curvature":
                kept.append({k: v for k, v in r.items() if k not in ("seconds", "imagesPerSec")})
        return kept

    for name in ["metrics.jsonl", "probes.jsonl"]:
        a, b = records(Path(run_a) / name), records(Path(run_b) / name)
        same = json.dumps(a) == json.dumps(b)
        print(f"{name}: {len(a)} and {len(b)} records, {'the same' if same else 'DIFFERENT'}")
        if not same:
            sys.exit(1)


def main(data_dir, chosen):
    runs = defaultdict(dict)
    for run_dir in sorted(Path(data_dir).iterdir()):
        if (run_dir / "probes.jsonl").exists() and "-s" in run_dir.name:
            condition, seed = run_dir.name.rsplit("-s", 1)
            runs[condition][seed] = run_outcomes(run_dir)
    conditions = chosen or list(runs)
    print("| outcome | " + " | ".join(f"{c} ({len(runs[c])} seeds)" for c in conditions) + " |")
    print("|---" * (len(conditions) + 1) + "|")
    keys = list(dict.fromkeys(k for c in conditions for o in runs[c].values() for k in o if k != "ics"))
    for key in keys:
        print(f"| {key} | " + " | ".join(mean_std([o.get(key) for o in runs[c].values()]) for c in conditions) + " |")
    print()
    print("Internal covariate shift per layer, mean over probed steps (then mean ± std over seeds):")
    print()
    print("| layer | " + " | ".join(f"{c}: ‖G − G′‖₂ | {c}: ‖G − G′‖₂/‖G‖₂ | {c}: cos(G, G′)" for c in conditions) + " |")
    print("|---" * (3 * len(conditions) + 1) + "|")
    first = next(iter(runs[conditions[0]].values()))["ics"]
    for i in sorted(first)[1:]:
        cells = []
        for c in conditions:
            for key in ["shift", "relative", "cosine"]:
                cells.append(mean_std([o["ics"][i][key] for o in runs[c].values() if i in o["ics"]]))
        print(f"| #{i + 1} {first[i]['name']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--same"]:
        same_records(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "docs/data/batchnorm", sys.argv[2:])
