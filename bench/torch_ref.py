"""PyTorch reference for bench/throughput.ts: the same workloads timed the same way (warm-up,
median of repeats): sgemm n³, and per model a training step (SGD, momentum 0.9, weight decay
5e-4, cross-entropy, random inputs) and inference at each thread count, plus the peak bytes
a training step allocates (the profiler's allocation events from before the first step, so
gradients, momentum buffers, activations and temporaries count, as in retrograd's figure).
Run with Debian's python3-torch and libopenblas0-pthread, by /usr/bin/python3:
  /usr/bin/python3 bench/torch_ref.py [--threads 1,2] [--models resnet20:64,resnet18:32]
      [--sizes 256,1024] [--repeats 5] [--peak-only] [--device cpu|cuda]
--device cuda (the reference for the WebGPU bench, bench/gpu-check.sh) puts the models and data
on the GPU and times the work, not its launch: every timed call ends with
torch.cuda.synchronize(), and the warm-up runs at least twice and a second, as retrograd's
does, so that cuBLAS/cuDNN handles, their algorithm choices and lazily loaded kernels are
settled. Float32 as retrograd computes it: TF32 is off for matrix products and convolutions
(cuDNN's convolutions use TF32 by default on Ampere and later). cuDNN's autotuner stays at its
default (off). The peak is then torch.cuda.max_memory_allocated() over two fresh steps, less
what the model, its data and the optimiser held before them.
Prints JSON: the timings, or with --peak-only only the models' peak step memory (the bench
asks for each workload right after timing its own, so that both figures of a ratio come from
the same minute of this noisy machine). Reference numbers only; retrograd never depends on torch."""
import argparse, json, statistics, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


def resnet(stages, blocks, stem):
    """CIFAR-style ResNet: a 3×3 stem conv, `blocks` basic blocks per stage, global pool, fc."""
    layers, cin = [nn.Conv2d(3, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU()], stem
    for s, width in enumerate(stages):
        for i in range(blocks[s]):
            layers.append(Block(cin, width, 2 if s > 0 and i == 0 else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*layers)


MODELS = {
    "resnet20": lambda: resnet((16, 32, 64), (3, 3, 3), 16),
    "resnet18": lambda: resnet((64, 128, 256, 512), (2, 2, 2, 2), 64),  # the cifar stem
}


# Warm-up before timing: (at least this many calls, and at least this many seconds).
WARM_UP = {"cpu": (1, 0.0), "cuda": (2, 1.0)}


def median_time(fn, repeats, device):
    """Median seconds of `repeats` calls after the warm-up; on CUDA each call waits for its kernels."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    min_calls, min_seconds = WARM_UP[device]
    calls, t0 = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - t0 < min_seconds:
        fn()
        sync()
        calls += 1
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train_setup(name, batch, device):
    torch.manual_seed(0)
    model = MODELS[name]().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x, y = torch.randn(batch, 3, 32, 32, device=device), torch.arange(batch, device=device) % 10

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return model, x, step


def peak_step_bytes_cuda(name, batch):
    """Peak of the CUDA caching allocator's allocated bytes over two fresh training steps, less
    what was allocated before them (sizes as the allocator rounds them, 512-byte multiples)."""
    _, _, step = train_setup(name, batch, "cuda")
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def peak_step_bytes(name, batch):
    """Peak of the running sum of allocations minus frees over two fresh training steps. The
    profiler books an op's allocations (net of what it frees) on the op itself and frees
    outside ops as "[memory]" events, so self memory summed in time order traces live bytes."""
    _, _, step = train_setup(name, batch, "cpu")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
        step()
    live = peak = 0
    for e in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += e.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


def ieee_float32():
    """TF32 off for cuBLAS and cuDNN: through fp32_precision where this torch has it (2.9 and
    later, which warn that the allow_tf32 flags are going), else through those flags."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        conv.fp32_precision = "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def measure(threads, models, sizes, repeats, device):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    sgemm = {}
    for n in sizes:
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        sgemm[str(n)] = 2 * n ** 3 / median_time(lambda: a @ b, 20 if n <= 256 else repeats, device) / 1e9
    out = []
    for name, batch in models:
        model, x, step = train_setup(name, batch, device)
        train = batch / median_time(step, repeats, device)
        model.eval()
        with torch.no_grad():
            infer = batch / median_time(lambda: model(x), repeats, device)
        out.append({"model": name, "batch": batch, "trainImagesPerSec": train, "inferImagesPerSec": infer})
    return {"threads": threads, "sgemmGflops": sgemm, "models": out}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--threads", default="1,2")
    p.add_argument("--models", default="resnet20:64,resnet18:32")
    p.add_argument("--sizes", default="256,1024")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--peak-only", action="store_true")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    a = p.parse_args()
    models = [(m.split(":")[0], int(m.split(":")[1])) for m in a.models.split(",") if m]
    sizes = [int(n) for n in a.sizes.split(",") if n]
    on_gpu = {}
    if a.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(f"torch_ref.py --device cuda: torch {torch.__version__} sees no CUDA device")
        ieee_float32()
        on_gpu = {"device": torch.cuda.get_device_name(), "cuda": torch.version.cuda, "tf32": False}
    if a.peak_only:
        torch.set_num_threads(1)
        peak = peak_step_bytes_cuda if a.device == "cuda" else peak_step_bytes
        peaks = {name: peak(name, batch) / 2 ** 20 for name, batch in models}
        print(json.dumps({"torch": torch.__version__, **on_gpu, "runs": [], "peakStepMiB": peaks}, indent=2))
    else:
        runs = [measure(int(t), models, sizes, a.repeats, a.device) for t in a.threads.split(",")]
        print(json.dumps({"torch": torch.__version__, **on_gpu, "runs": runs, "peakStepMiB": {}}, indent=2))
