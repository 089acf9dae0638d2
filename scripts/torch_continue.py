#!/usr/bin/python3
"""
Continue a retrograd run in PyTorch's distributed data-parallel training: the road for a model
that has outgrown one machine. It loads a run directory's checkpoint.safetensors (the model
under `model.`, the SGD momentum buffers under `optim.state.<i>.momentum_buffer`, the
settings in the run's config.json), rebuilds the same architecture with the same state-dict
names in PyTorch, and trains on with torch.nn.parallel.DistributedDataParallel: gloo on CPUs,
nccl on GPUs (one process per GPU), launched by torchrun. At the end rank 0 writes a plain
state dict (safetensors, PyTorch names) that `retrograd eval --weights` and
`retrograd train --init` read back.

    torchrun --standalone --nproc_per_node=2 scripts/torch_continue.py \
        --run runs/resnet20-fashion-mnist-seed0 --steps 1000 --out runs/torch/model.safetensors

One step takes a global batch of --batch-size images (default: the run's), split evenly over
the processes; each epoch's batches come from a permutation of the training set seeded by
--seed + epoch, the same on every process. SGD keeps the run's momentum, Nesterov and
weight decay; the learning rate is constant (--lr, default the run's peak rate). Each process
normalises BatchNorm by its own share of the batch, as DDP does (--sync-bn: SyncBatchNorm over
all of them, GPUs only in PyTorch 1.13), and the running statistics that are kept are rank
0's. --log FILE gets one JSON line per step (rank 0): the step, the loss averaged over the
processes and the global batch's example indices (rank r took the r-th share), so the steps
can be redone elsewhere (test/torch_continue.test.ts does, in retrograd).

Models: resnet20/32/56, resnet18/34/50 (with retrograd's CIFAR stem for images of at most
64 px), vgg11/13/16 and their -bn versions, mlp. Datasets: the IDX ones (fashion-mnist,
mnist, kmnist), from --data, the run's data directory, $RETROGRAD_CACHE/<name> or
/usr/share/datasets/<name>. Needs PyTorch (Debian: apt-get install python3-torch).
"""
import argparse
import gzip
import json
import os
import struct
import sys

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

SAFETENSORS_DTYPES = {"F32": torch.float32, "I64": torch.int64}


def read_safetensors(path):
    """(tensors by name, metadata) of a safetensors file; F32 and I64 entries."""
    with open(path, "rb") as f:
        raw = f.read()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_len])
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] not in SAFETENSORS_DTYPES:
            sys.exit(f"{path}: tensor {name} has dtype {entry['dtype']}; this script reads F32 and I64")
        begin, end = entry["data_offsets"]
        data = bytearray(raw[8 + header_len + begin:8 + header_len + end])
        tensors[name] = torch.frombuffer(data, dtype=SAFETENSORS_DTYPES[entry["dtype"]]).reshape(entry["shape"]).clone()
    return tensors, metadata


def write_safetensors(path, tensors):
    """A plain state dict as safetensors (float32, num_batches_tracked int64), written atomically."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        dtype = "I64" if t.dtype == torch.int64 else "F32"
        blob = (t if dtype == "I64" else t.float()).numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp-{os.getpid()}"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---- the architectures, with retrograd's (torchvision's) module names and registration order ----

class Block(nn.Module):
    """BasicBlock (two 3x3 convs) or Bottleneck (1x1, 3x3 with the stride, 1x1 to 4x planes)."""

    def __init__(self, cin, planes, stride, bottleneck):
        super().__init__()
        specs = [(cin, planes, 1, 1), (planes, planes, 3, stride), (planes, planes * 4, 1, 1)] if bottleneck \
            else [(cin, planes, 3, stride), (planes, planes, 3, 1)]
        for i, (a, b, k, s) in enumerate(specs, 1):
            setattr(self, f"conv{i}", nn.Conv2d(a, b, k, s, k // 2, bias=False))
            setattr(self, f"bn{i}", nn.BatchNorm2d(b))
        self.n = len(specs)
        cout = specs[-1][1]
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) \
            if stride != 1 or cin != cout else None

    def forward(self, x):
        out = x
        for i in range(1, self.n + 1):
            out = getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(out))
            if i < self.n:
                out = F.relu(out)
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    def __init__(self, blocks, widths, bottleneck, in_channels, num_classes, imagenet_stem):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 7 if imagenet_stem else 3, 2 if imagenet_stem else 1,
                               3 if imagenet_stem else 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.maxpool = nn.MaxPool2d(3, 2, 1) if imagenet_stem else nn.Identity()
        cin, self.stages = widths[0], []
        for i, (n, w) in enumerate(zip(blocks, widths)):
            layers = []
            for j in range(n):
                layers.append(Block(cin, w, 2 if i > 0 and j == 0 else 1, bottleneck))
                cin = w * (4 if bottleneck else 1)
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
            self.stages.append(f"layer{i + 1}")
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        for name in self.stages:
            x = getattr(self, name)(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


VGG_LAYOUTS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """torchvision's features; retrograd's head: global average pool, 512 → 512 → classes."""

    def __init__(self, layout, batch_norm, in_channels, num_classes):
        super().__init__()
        layers, cin = [], in_channels
        for v in layout:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers += [nn.Conv2d(cin, v, 3, padding=1)] + ([nn.BatchNorm2d(v)] if batch_norm else []) + [nn.ReLU()]
            cin = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(cin, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class MLP(nn.Module):
    def __init__(self, in_features, num_classes, hidden=(256, 128)):
        super().__init__()
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(0.0)]
            width = h
        self.layers = nn.Sequential(*layers, nn.Linear(width, num_classes))

    def forward(self, x):
        return self.layers(torch.flatten(x, 1))


RESNETS = {"resnet20": ([3, 3, 3], [16, 32, 64], False), "resnet32": ([5, 5, 5], [16, 32, 64], False),
           "resnet56": ([9, 9, 9], [16, 32, 64], False), "resnet18": ([2, 2, 2, 2], [64, 128, 256, 512], False),
           "resnet34": ([3, 4, 6, 3], [64, 128, 256, 512], False), "resnet50": ([3, 4, 6, 3], [64, 128, 256, 512], True)}


def create_model(name, channels, size, classes):
    """The model retrograd's createModel(name, ...) builds, as a PyTorch module."""
    if name in RESNETS:
        blocks, widths, bottleneck = RESNETS[name]
        imagenet_stem = name in ("resnet18", "resnet34", "resnet50") and size > 64
        return ResNet(blocks, widths, bottleneck, channels, classes, imagenet_stem)
    if name.removesuffix("-bn") in VGG_LAYOUTS:
        return VGG(VGG_LAYOUTS[name.removesuffix("-bn")], name.endswith("-bn"), channels, classes)
    if name == "mlp":
        return MLP(channels * size * size, classes)
    sys.exit(f"model {name!r}: this script builds resnet20/32/56, resnet18/34/50, vgg11/13/16(-bn) and mlp")


# ---- data ----

IDX_DATASETS = {"fashion-mnist", "mnist", "kmnist"}


def read_idx(directory, name):
    for path, opener in ((os.path.join(directory, name), open), (os.path.join(directory, name + ".gz"), gzip.open)):
        if os.path.exists(path):
            with opener(path, "rb") as f:
                raw = f.read()
            ndim = raw[3]
            dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
            return torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)
    return None


def load_training_set(settings, explicit):
    name = settings["dataset"]
    if name not in IDX_DATASETS:
        sys.exit(f"dataset {name!r}: this script reads the IDX datasets ({', '.join(sorted(IDX_DATASETS))})")
    cache = os.environ.get("RETROGRAD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "retrograd")
    roots = [r for r in (explicit, settings.get("data")) if r] + [os.path.join(cache, name), f"/usr/share/datasets/{name}"]
    for root in roots:
        for directory in (root, os.path.join(root, name)):
            images, labels = read_idx(directory, "train-images-idx3-ubyte"), read_idx(directory, "train-labels-idx1-ubyte")
            if images is not None and labels is not None:
                return images[:, None], labels.long()
    sys.exit(f"{name}: no train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] in {', '.join(roots)}")


def normalise(pixels, mean, std):
    """(pixel/255 − mean)/std per channel in float64, rounded to float32, as retrograd's loader does."""
    mean = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
    return ((pixels.double() / 255 - mean) / std).float()


# ---- the run ----

def load_checkpoint(model, optimizer, path):
    """The retrograd checkpoint's model and SGD state, into PyTorch's model and optimizer."""
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != "retrograd-checkpoint-v1":
        sys.exit(f"{path}: not a retrograd checkpoint (metadata format {metadata.get('format')!r})")
    state = {k[len("model."):]: t for k, t in tensors.items() if k.startswith("model.")}
    model.load_state_dict(state, strict=True)
    params = list(model.parameters())
    names = [n for n, _ in model.named_parameters()]
    for key, t in tensors.items():
        if not key.startswith("optim."):
            continue
        parts = key.split(".")  # optim.state.<i>.momentum_buffer, PyTorch's optimizer state names
        if len(parts) != 4 or parts[1] != "state" or parts[3] != "momentum_buffer" or not parts[2].isdigit():
            sys.exit(f"{path}: optimizer entry {key} is not an SGD momentum buffer")
        i = int(parts[2])
        if i >= len(params) or params[i].shape != t.shape:
            sys.exit(f"{path}: {key} {list(t.shape)} does not fit parameter {i} ({names[i] if i < len(names) else 'none'})")
        optimizer.state[params[i]]["momentum_buffer"] = t.to(params[i].device)
    return json.loads(metadata["position"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="retrograd run directory (config.json, checkpoint.safetensors)")
    parser.add_argument("--out", required=True, help="safetensors state dict to write at the end")
    parser.add_argument("--steps", type=int, required=True, help="optimizer steps to take")
    parser.add_argument("--batch-size", type=int, help="global batch size (default: the run's)")
    parser.add_argument("--lr", type=float, help="learning rate, constant (default: the run's peak rate)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch order")
    parser.add_argument("--data", help="directory of the dataset's files")
    parser.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm over all processes (GPUs)")
    parser.add_argument("--log", help="JSON lines, one per step (rank 0)")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)

    with open(os.path.join(args.run, "config.json")) as f:
        settings = json.load(f)
    train = settings["train"]
    batch = args.batch_size or train["batchSize"]
    if batch % world:
        sys.exit(f"--batch-size {batch} does not split evenly over {world} processes")
    images, labels = load_training_set(settings, args.data)
    model = create_model(settings["model"], images.shape[1], images.shape[2], int(labels.max()) + 1).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr or train["lr"], momentum=train["momentum"],
                                dampening=0.0, weight_decay=train["weightDecay"], nesterov=train["nesterov"])
    position = load_checkpoint(model, optimizer, os.path.join(args.run, "checkpoint.safetensors"))
    if args.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    ddp.train()

    share, per_epoch = batch // world, len(labels) // batch
    log = open(args.log, "w") if args.log and rank == 0 else None
    for step in range(args.steps):
        epoch, k = divmod(step, per_epoch)
        if k == 0:  # a new permutation each epoch, the same on every process
            order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(args.seed + epoch))
        indices = order[k * batch:(k + 1) * batch]
        mine = indices[rank * share:(rank + 1) * share]
        x = normalise(images[mine], train["mean"], train["std"]).to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(ddp(x), labels[mine].to(device))
        loss.backward()  # DDP averages the gradients over the processes
        optimizer.step()
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        if log:
            record = {"step": position["step"] + step + 1, "loss": mean_loss.item() / world,
                      "world": world, "indices": indices.tolist()}
            log.write(json.dumps(record) + "\n")
            log.flush()
    if rank == 0:
        write_safetensors(args.out, model.state_dict())
        print(f"wrote {args.out} after {args.steps} steps on {world} processes ({'nccl' if cuda else 'gloo'})")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
