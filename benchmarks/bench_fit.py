"""How fast is helpers.train.fit? Times it against plain hand-written loops, in the same run.

For each workload (an MLP on MNIST, LeNet-5 on CIFAR-10), with the same model, data and
optimiser settings, it measures seconds per epoch of:

  plain-dataloader  what a first loop usually looks like: torchvision dataset + ToTensor/
                    Normalize + DataLoader, `total += loss.item()` every batch
  plain-device      the same hand-written loop over helpers' DeviceLoader (data on the device)
  bare-device       the least a loop can do over the DeviceLoader: forward, loss, zero_grad,
                    backward, step; no metrics at all
  fit               helpers.train.fit over the DeviceLoader (no progress bar), same precision
  fit-amp           (CUDA only) fit with bf16 autocast and channels_last

The variants are interleaved: every round runs one epoch of each, in an order that rotates
from round to round, so that a machine that gets busier or quieter during the run biases
none of them. It prints the median seconds per epoch of each variant and, for fit, the median
of its per-round ratios to bare-device and plain-device (the overhead of fit's bookkeeping).
Not a test: timings vary from machine to machine.

    python benchmarks/bench_fit.py [--device cuda] [--rounds 7] [--limit 20000]
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

import helpers
from helpers import data, models, train
from helpers.device import synchronize


def plain_loop(model, loader, optimizer, device):
    """One epoch as a learner first writes it."""
    model.train()
    total, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        out = model(x)
        loss = F.cross_entropy(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        correct += (out.argmax(1) == y).sum().item()
        seen += len(y)
    return total / seen, correct / seen


def bare_loop(model, loader, optimizer, device):
    """One epoch with nothing but the training steps."""
    model.train()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def timed(run_epoch, device) -> float:
    synchronize(device)
    start = time.perf_counter()
    run_epoch()
    synchronize(device)
    return time.perf_counter() - start


def torchvision_loader(name, limit, batch_size):
    mean, std = data.STATS[name]
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    if name == "MNIST":
        ds = data.mnist(train=True, transform=tf)
    else:  # CIFAR-10 as HWC uint8 arrays, transformed per sample like torchvision's CIFAR10
        images, labels = data.cifar10_tensors(train=True)
        ds = _ArrayDataset(images.permute(0, 2, 3, 1).numpy(), labels.tolist(), tf)
    keep = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:limit]
    return DataLoader(Subset(ds, keep.tolist()), batch_size=batch_size, shuffle=True, num_workers=0)


class _ArrayDataset(torch.utils.data.Dataset):
    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def bench(name, make_model, device, rounds, limit, batch_size, lr) -> dict[str, list[float]]:
    """Seconds per epoch of each variant, one entry per round (after one warm-up round)."""
    train_loader, _ = data.device_loaders(name, device, batch_size=batch_size, limit=limit)
    slow_loader = torchvision_loader(name, limit, batch_size)

    def fresh():
        helpers.seed_everything(0)
        model = make_model().to(device)
        return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    variants = {}
    for variant, make_epoch in {
        "plain-dataloader": lambda m, o: lambda: plain_loop(m, slow_loader, o, device),
        "plain-device": lambda m, o: lambda: plain_loop(m, train_loader, o, device),
        "bare-device": lambda m, o: lambda: bare_loop(m, train_loader, o, device),
        "fit": lambda m, o: lambda: train.fit(m, train_loader, o, epochs=1, progress=False),
    }.items():
        variants[variant] = make_epoch(*fresh())
    if device.type == "cuda":
        model, optimizer = fresh()
        variants["fit-amp"] = lambda: train.fit(model, train_loader, optimizer, epochs=1, progress=False,
                                                amp=True, channels_last=True)
    names = list(variants)
    times = {name: [] for name in names}
    for round_ in range(rounds + 1):
        order = names[round_ % len(names):] + names[:round_ % len(names)]  # rotate the order
        for name in order:
            seconds = timed(variants[name], device)
            if round_:  # round 0 warms up: allocator, cuDNN autotuning, caches
                times[name].append(seconds)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (one epoch of each variant)")
    parser.add_argument("--limit", type=int, default=20_000, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    device = helpers.get_device(args.device)
    print(f"torch {torch.__version__}, device {train.describe_device(device)}, {torch.get_num_threads()} CPU "
          f"threads, {args.limit} images/epoch, batch {args.batch_size}, {args.rounds} interleaved rounds")
    workloads = {
        "MLP 784-512-256-10 on MNIST": ("MNIST", lambda: models.MLP(784, [512, 256], 10), 0.05),
        "LeNet-5 on CIFAR-10": ("CIFAR10", lambda: models.LeNet5(3, 10, image_size=32), 0.02),
    }
    print(f"{'workload':30} {'variant':17} {'s/epoch':>8} (median of the rounds)")
    for label, (name, make_model, lr) in workloads.items():
        times = bench(name, make_model, device, args.rounds, args.limit, args.batch_size, lr)
        for variant, seconds in times.items():
            print(f"{label:30} {variant:17} {statistics.median(seconds):8.3f}")
        for reference in ("bare-device", "plain-device"):
            ratios = [f / r for f, r in zip(times["fit"], times[reference])]
            print(f"{label:30} fit / {reference:11} {statistics.median(ratios):8.3f}x "
                  f"(rounds: {min(ratios):.3f} to {max(ratios):.3f})")


if __name__ == "__main__":
    main()
