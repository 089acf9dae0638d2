"""PyTorch reference for bench/throughput.ts: the same workloads (sgemm n³; ResNet-20, CIFAR
shapes, batch 64, SGD step) timed the same way (warm-up, median of repeats) at 1 and 2 threads.
Run with Debian's python3-torch (and libopenblas0-pthread): /usr/bin/python3 bench/torch_ref.py
Prints JSON. Reference numbers only; retrograd never depends on torch."""
import json, statistics, sys, time
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


def resnet20():
    layers, cin = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for width, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(Block(cin, width, stride if i == 0 else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def median_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(threads, repeats=5, batch=64):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    sgemm = 2 * 1024 ** 3 / median_time(lambda: a @ b, repeats) / 1e9
    model = resnet20()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x, y = torch.randn(batch, 3, 32, 32), torch.arange(batch) % 10

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    train = batch / median_time(step, repeats)
    model.eval()
    with torch.no_grad():
        infer = batch / median_time(lambda: model(x), repeats)
    return {"threads": threads, "sgemm1024Gflops": sgemm, "trainImagesPerSec": train, "inferImagesPerSec": infer}


if __name__ == "__main__":
    print(json.dumps({"torch": torch.__version__, "runs": [measure(t) for t in (1, 2)]}, indent=2))
