"""PyTorch reference for bench/throughput.ts: the same workloads timed the same way (warm-up,
median of repeats): sgemm n³, and per model a training step (SGD, momentum 0.9, weight decay
5e-4, cross-entropy, random inputs) and inference at each thread count, plus the peak bytes
a training step allocates (the profiler's allocation events from before the first step, so
gradients, momentum buffers, activations and temporaries count, as in retrograd's figure).
Run with Debian's python3-torch and libopenblas0-pthread, by /usr/bin/python3:
  /usr/bin/python3 bench/torch_ref.py [--threads 1,2] [--models resnet20:64,resnet18:32]
      [--sizes 256,1024] [--repeats 5] [--peak-only]
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


def median_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train_setup(name, batch):
    torch.manual_seed(0)
    model = MODELS[name]()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x, y = torch.randn(batch, 3, 32, 32), torch.arange(batch) % 10

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return model, x, step


def peak_step_bytes(name, batch):
    """Peak of the running sum of allocations minus frees over two fresh training steps. The
    profiler books an op's allocations (net of what it frees) on the op itself and frees
    outside ops as "[memory]" events, so self memory summed in time order traces live bytes."""
    _, _, step = train_setup(name, batch)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
        step()
    live = peak = 0
    for e in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += e.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


def measure(threads, models, sizes, repeats):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    sgemm = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        sgemm[str(n)] = 2 * n ** 3 / median_time(lambda: a @ b, 20 if n <= 256 else repeats) / 1e9
    out = []
    for name, batch in models:
        model, x, step = train_setup(name, batch)
        train = batch / median_time(step, repeats)
        model.eval()
        with torch.no_grad():
            infer = batch / median_time(lambda: model(x), repeats)
        out.append({"model": name, "batch": batch, "trainImagesPerSec": train, "inferImagesPerSec": infer})
    return {"threads": threads, "sgemmGflops": sgemm, "models": out}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--threads", default="1,2")
    p.add_argument("--models", default="resnet20:64,resnet18:32")
    p.add_argument("--sizes", default="256,1024")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--peak-only", action="store_true")
    a = p.parse_args()
    models = [(m.split(":")[0], int(m.split(":")[1])) for m in a.models.split(",") if m]
    sizes = [int(n) for n in a.sizes.split(",") if n]
    if a.peak_only:
        torch.set_num_threads(1)
        peaks = {name: peak_step_bytes(name, batch) / 2 ** 20 for name, batch in models}
        print(json.dumps({"torch": torch.__version__, "runs": [], "peakStepMiB": peaks}, indent=2))
    else:
        runs = [measure(int(t), models, sizes, a.repeats) for t in a.threads.split(",")]
        print(json.dumps({"torch": torch.__version__, "runs": runs, "peakStepMiB": {}}, indent=2))
