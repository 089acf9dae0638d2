"""The report of bench/gpu-check.sh: reads what its stages left in the work folder and writes
gpu-check.json (rewritten after every stage, so a run cut short still says what it measured),
with --table also the summary table for the log, with --verdict only what the adapter probe
found (hardware, software, none, nodevice, probe-failed) for the script to act on.

  python3 bench/gpu_check_report.py WORK OUT.json [--table]
  python3 bench/gpu_check_report.py WORK - --verdict

Work-folder files, each optional: kit.json (bench/gpu-kit.sh), gpu.csv (nvidia-smi),
deno_version.txt, probe.json (bench/gpu_probe.ts), abort.txt, stages.tsv, the bench's JSON per
stage (sgemm.out, resnet20.out, resnet18.out), PyTorch's (torch.out, torch-peak.out, from
bench/torch_ref.py), the per-kernel profile (profile.json, bench/gpu_profile.ts --out), the host
time by layer (host.json, bench/gpu_host.ts --out), the GEMM
variants (variants.out, bench/gpu_gemm_variants.ts) and the parity test's output (parity.out). The settings come from the
script's environment. The fp32 peak is a datasheet figure looked up by the GPU's name, never
measured; ratios are retrograd / PyTorch. Python's standard library only: it runs before
anything else is known to work."""
import json, os, re, sys

# nvidia-smi's name -> (fp32 GFLOP/s, where the figure comes from). Vector fp32, no tensor cores.
DATASHEET_FP32 = {
    "NVIDIA H200": (67000.0, "NVIDIA H200 datasheet, H200 SXM: 67 TFLOP/s FP32 (not measured)"),
    "NVIDIA H200 NVL": (60000.0, "NVIDIA H200 datasheet, H200 NVL: 60 TFLOP/s FP32 (not measured)"),
}
MODEL_STAGES = ("resnet20", "resnet18")


def read(work, name):
    try:
        with open(os.path.join(work, name)) as f:
            return f.read()
    except OSError:
        return None


def read_json(work, name):
    text = read(work, name)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def verdict(probe):
    if probe is None:
        return "probe-failed"
    if not probe.get("found"):
        return "none"
    if not probe.get("deviceOpened"):
        return "nodevice"
    return "software" if probe.get("software") else "hardware"


def gpu_from_smi(text):
    if not text or "," not in text:
        return None
    name, driver, memory, max_clock, clock = (part.strip() for part in text.splitlines()[0].split(",")[:5])
    return {"name": name, "driver": driver, "memory": memory, "maxSmClock": max_clock, "smClockAtStart": clock}


def fp32_peak(gpu):
    if os.environ.get("PEAK_GFLOPS"):
        return {"gflops": float(os.environ["PEAK_GFLOPS"]), "source": os.environ.get("PEAK_SOURCE") or "given by PEAK_GFLOPS"}
    hit = DATASHEET_FP32.get(gpu["name"]) if gpu else None
    return {"gflops": hit[0], "source": hit[1]} if hit else None


def stages(work):
    rows = []
    for line in (read(work, "stages.tsv") or "").splitlines():
        name, status, seconds, limit, rc = (line.split("\t") + [""] * 5)[:5]
        rows.append({"name": name, "status": status, "seconds": int(seconds or 0), "limitSeconds": int(limit or 0),
                     **({"exitCode": int(rc)} if rc else {})})
    return rows


def parity(work, stage_rows):
    text = read(work, "parity.out")
    row = next((r for r in stage_rows if r["name"] == "parity"), None)
    if row is None:
        return None
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text or "")
    counts = {key.lower(): int(n) for key, n in re.findall(r"(Total|Passed|Skipped):\s+(\d+)", plain)}
    return {"status": row["status"], **counts, **({"failures": plain[-4000:]} if row["status"] != "ok" else {})}


def ratio(a, b):
    return a / b if a is not None and b else None


def merge(work):
    """Our figures per workload beside PyTorch's, with the ratios and the share of the peak."""
    gpu = gpu_from_smi(read(work, "gpu.csv"))
    peak = fp32_peak(gpu)
    torch = read_json(work, "torch.out") or {}
    torch_peak = read_json(work, "torch-peak.out") or {}
    torch_run = (torch.get("runs") or [{}])[0]
    torch_sgemm = torch_run.get("sgemmGflops", {})
    torch_models = {m["model"]: m for m in torch_run.get("models", [])}
    sgemm, models, adapter = [], [], None
    for stage in ("sgemm",) + MODEL_STAGES:
        bench = read_json(work, stage + ".out")
        if not bench:
            continue
        adapter = adapter or bench.get("adapter")
        for s in bench.get("sgemm", []):
            t = torch_sgemm.get(str(s["n"]))
            sgemm.append({"n": s["n"], "gflops": s["gflops"],
                          "pctOfFp32Peak": 100 * s["gflops"] / peak["gflops"] if peak else None,
                          "torchGflops": t, "ratio": ratio(s["gflops"], t)})
        for m in bench.get("models", []):
            t = torch_models.get(m["model"], {})
            models.append({
                "model": m["model"], "batch": m["batch"],
                "trainImagesPerSec": m["trainImagesPerSec"], "inferImagesPerSec": m.get("inferImagesPerSec"),
                "dispatchesPerStep": m.get("dispatchesPerStep"), "submitsPerStep": m.get("submitsPerStep"),
                "peakStepMiB": m.get("peakStepMiB"),
                "torchTrainImagesPerSec": t.get("trainImagesPerSec"), "torchInferImagesPerSec": t.get("inferImagesPerSec"),
                "torchPeakStepMiB": (torch_peak.get("peakStepMiB") or {}).get(m["model"]),
                "trainRatio": ratio(m["trainImagesPerSec"], t.get("trainImagesPerSec")),
                "inferRatio": ratio(m.get("inferImagesPerSec"), t.get("inferImagesPerSec")),
            })
    torch_info = {k: torch[k] for k in ("torch", "device", "cuda", "tf32") if k in torch} or None
    return gpu, peak, adapter, sgemm, models, torch_info


def profile(work):
    """The per-kernel profile as gpu_profile.ts wrote it (every group kept; the models done so far), or None."""
    return read_json(work, "profile.json")


def host(work):
    """The host time of a step by layer as gpu_host.ts wrote it (one entry per model and dispatchesPerSubmit), or None."""
    return read_json(work, "host.json")


def gemm_variants(work):
    """Per shape: GFLOP/s of the baseline, the default plan ("auto") and the best variant, and the worst error."""
    data = read_json(work, "variants.out")
    if not data:
        return None
    shapes = []
    for s in data.get("shapes", []):
        by = {v["variant"]: v for v in s["variants"]}
        best = by.get(s["best"], {})
        shapes.append({"name": s["name"], "M": s["M"], "N": s["N"], "K": s["K"],
                       "baselineGflops": by.get("baseline", {}).get("gflops"), "autoGflops": by.get("auto", {}).get("gflops"),
                       "autoPlan": by.get("auto", {}).get("plan"), "best": s["best"], "bestGflops": best.get("gflops"),
                       "maxRelErr": max(v["maxRelErr"] for v in s["variants"]), "variants": s["variants"]})
    return {"adapter": data.get("adapter"), "batch": data.get("batch"), "timing": data.get("timing"),
            "error": data.get("error"), "shapes": shapes, "skipped": data.get("skipped", [])}


def report(work):
    probe = read_json(work, "probe.json")
    stage_rows = stages(work)
    gpu, peak, adapter, sgemm, models, torch_info = merge(work)
    abort = (read(work, "abort.txt") or "").strip()
    unclean = [r["name"] for r in stage_rows if r["status"] != "ok"]
    status = f"failed: {abort}" if abort else (f"incomplete: {', '.join(unclean)}" if unclean else "ok")
    if not abort and verdict(probe) == "software":
        status += " (SOFTWARE adapter: not a GPU's figures)"
    env = os.environ
    return {
        "check": "retrograd WebGPU on a real GPU (bench/gpu-check.sh)",
        "status": status,
        "elapsedSeconds": int(env.get("ELAPSED_S", "0")),
        "kit": read_json(work, "kit.json"),
        "deno": (read(work, "deno_version.txt") or "").strip() or None,
        "gpu": gpu,
        "webgpuBackend": env.get("DENO_WEBGPU_BACKEND"),
        "vkDriverFiles": env.get("VK_DRIVER_FILES"),
        "adapterVerdict": verdict(probe),
        "adapter": probe,
        "benchAdapter": adapter,
        "fp32Peak": peak,
        "settings": {k: env.get(k) for k in ("SIZES", "BATCH_RESNET20", "BATCH_RESNET18", "REPEATS", "BUDGET_S",
                                             "ALLOW_FALLBACK", "TORCH_DEVICE")},
        "timing": "medians of REPEATS timed calls after a warm-up of at least 2 calls and 1 s, each call ended by "
                  "a wait for the GPU (WebGPU: onSubmittedWorkDone; PyTorch on CUDA: torch.cuda.synchronize)",
        "sgemm": sgemm,
        "models": models,
        "torch": torch_info,
        "parity": parity(work, stage_rows),
        "profile": profile(work),
        "host": host(work),
        "gemmVariants": gemm_variants(work),
        "stages": stage_rows,
    }


def fmt(x, digits=1, suffix=""):
    return "-" if x is None else f"{x:.{digits}f}{suffix}"


def torch_line(t):
    if not t:
        return "not measured"
    return f"{t['torch']} on {t.get('device', 'the CPU')}" + (f", CUDA {t['cuda']}, TF32 off" if "cuda" in t else "")


def table(r):
    lines = [f"gpu-check: {r['status']}",
             f"GPU: {(r['gpu'] or {}).get('name', '?')}, driver {(r['gpu'] or {}).get('driver', '?')}; "
             f"WebGPU adapter: {r['benchAdapter'] or (r['adapter'] or {}).get('info', {}).get('description', '?')} "
             f"through {r['webgpuBackend']}; {r['deno']}; PyTorch: {torch_line(r['torch'])}"]
    peak = r["fp32Peak"]
    lines.append(f"fp32 peak: {fmt(peak['gflops'] / 1000 if peak else None)} TFLOP/s"
                 f" ({peak['source'] if peak else 'unknown GPU: no percentage'})")
    lines.append("sgemm     retrograd GFLOP/s  % fp32 peak  PyTorch GFLOP/s  ratio")
    for s in r["sgemm"]:
        lines.append(f"{str(s['n']) + '³':<9} {fmt(s['gflops']):>17} {fmt(s['pctOfFp32Peak'], 1, '%'):>12} "
                     f"{fmt(s['torchGflops']):>16} {fmt(s['ratio'], 3, '×'):>6}")
    lines.append("model    batch  train img/s  infer img/s  dispatches submits  peak MiB | PyTorch train  infer  peak MiB | ratio train  infer")
    for m in r["models"]:
        lines.append(f"{m['model']:<8} {m['batch']:>5} {fmt(m['trainImagesPerSec']):>12} {fmt(m['inferImagesPerSec']):>12} "
                     f"{m['dispatchesPerStep'] if m['dispatchesPerStep'] is not None else '-':>10} "
                     f"{m['submitsPerStep'] if m['submitsPerStep'] is not None else '-':>7} {fmt(m['peakStepMiB']):>9} | "
                     f"{fmt(m['torchTrainImagesPerSec']):>13} {fmt(m['torchInferImagesPerSec']):>6} {fmt(m['torchPeakStepMiB']):>9} | "
                     f"{fmt(m['trainRatio'], 3, '×'):>11} {fmt(m['inferRatio'], 3, '×'):>6}")
    prof = r["profile"]
    for m in (prof or {}).get("models", []):
        span = f", GPU span {fmt(m.get('gpuSpanMsPerStep'), 2)} ms" if m.get("gpuSpanMsPerStep") is not None else ""
        lines.append(f"profile {m['model']} batch {m['batch']} ({prof['method']}): step {fmt(m['stepMs'], 2)} ms, "
                     f"kernels {fmt(m['kernelMsPerStep'], 2)} ms{span}, {fmt(m['dispatchesPerStep'], 0)} dispatches; top kernels:")
        for k in m["kernels"][:8]:
            lines.append(f"  {k['key'][:48]:<48} {fmt(k['countPerStep'], 0):>4}x {fmt(k['msPerStep'], 3):>9} ms "
                         f"{fmt(100 * k['shareOfKernels'], 1, '%'):>6} of kernels")
    for m in (r["host"] or {}).get("models", []):
        lines.append(f"host {m['model']} batch {m['batch']}, a submit every {m['dispatchesPerSubmit']} dispatches: "
                     f"step {fmt(m['stepMs'], 2)} ms ({fmt(m['imagesPerSec'])} img/s) = record {fmt(m['recordMs'], 2)} ms "
                     f"({fmt(m['usPerDispatch'])} µs per dispatch, {m['submitsPerStep']} submits) + flush {fmt(m['submitMs'], 2)} "
                     f"+ wait {fmt(m['waitMs'], 2)}; idle synchronize {fmt(m['idleSyncMs'], 2)} ms; "
                     f"{fmt(m['bindGroupsCreatedPerStep'])} bind groups created per step; largest self times:")
        for k in m["layers"][:5]:
            lines.append(f"  {k['layer'][:40]:<40} {fmt(k['msPerStep'], 3):>8} ms {fmt(k['usPerDispatch']):>7} µs/dispatch")
    variants = r["gemmVariants"]
    if variants:
        lines.append("gemm variants GFLOP/s   M×N×K             baseline      auto  auto plan       best variant        max rel err")
        for v in variants["shapes"]:
            lines.append(f"  {v['name'][:22]:<22} {str(v['M']) + '×' + str(v['N']) + '×' + str(v['K']):<17} "
                         f"{fmt(v['baselineGflops']):>8} {fmt(v['autoGflops']):>9}  {v['autoPlan'] or '-':<14} "
                         f"{v['best'][:13]:<13} {fmt(v['bestGflops']):>8} {v['maxRelErr']:.1e}")
        if variants["skipped"]:
            lines.append(f"  not measured (its budget): {', '.join(variants['skipped'])}")
    p = r["parity"]
    counts = f", {p['passed']}/{p['total']} passed, {p.get('skipped', 0)} skipped" if p and "total" in p else ""
    lines.append(f"parity (test/webgpu.test.ts): {p['status'] + counts if p else 'not run'}")
    lines.append("stages: " + ", ".join(f"{s['name']} {s['status']} {s['seconds']}s" for s in r["stages"]))
    return "\n".join(lines)


if __name__ == "__main__":
    work, out = sys.argv[1], sys.argv[2]
    if "--verdict" in sys.argv:
        print(verdict(read_json(work, "probe.json")))
        sys.exit(0)
    result = report(work)
    with open(out + ".part", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(out + ".part", out)
    if "--table" in sys.argv:
        print(table(result))
