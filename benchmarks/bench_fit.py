"""How fast is helpers.train.fit? Times it against plain hand-written loops, same run.

For each workload (an MLP on MNIST, LeNet-5 on CIFAR-10) and the same model, data and
optimiser settings, it measures seconds per epoch (after one warm-up epoch) of:

  plain-dataloader  what a first loop usually looks like: torchvision dataset + ToTensor/
                    Normalize + DataLoader, `total += loss.item()` every batch
  plain-device      the same hand-written loop over helpers' DeviceLoader (data on the device)
  fit               helpers.train.fit over the DeviceLoader (amp/channels_last on CUDA)

and prints each time and its ratio to fit. Not a test: timings vary from machine to machine.

    python benchmarks/bench_fit.py [--device cuda] [--epochs 2] [--limit 20000]
"""
import argparse
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


def seconds_per_epoch(run_epoch, epochs, device):
    run_epoch()  # warm-up: allocator, cuDNN autotuning, caches
    synchronize(device)
    start = time.perf_counter()
    for _ in range(epochs):
        run_epoch()
    synchronize(device)
    return (time.perf_counter() - start) / epochs


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


def bench(name, make_model, device, epochs, limit, batch_size, lr):
    train_loader, _ = data.device_loaders(name, device, batch_size=batch_size, limit=limit)
    fast = device.type == "cuda"
    results = {}

    def fresh():
        helpers.seed_everything(0)
        model = make_model().to(device)
        return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    model, opt = fresh()
    slow_loader = torchvision_loader(name, limit, batch_size)
    results["plain-dataloader"] = seconds_per_epoch(lambda: plain_loop(model, slow_loader, opt, device),
                                                    epochs, device)
    model, opt = fresh()
    results["plain-device"] = seconds_per_epoch(lambda: plain_loop(model, train_loader, opt, device),
                                                epochs, device)
    model, opt = fresh()
    results["fit"] = seconds_per_epoch(
        lambda: train.fit(model, train_loader, opt, epochs=1, progress=False, amp=fast, channels_last=fast),
        epochs, device)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per variant")
    parser.add_argument("--limit", type=int, default=20_000, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    device = helpers.get_device(args.device)
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else "")
          + f", {torch.get_num_threads()} CPU threads, {args.limit} images/epoch, batch {args.batch_size}")
    workloads = {
        "MLP 784-512-256-10 on MNIST": ("MNIST", lambda: models.MLP(784, [512, 256], 10), 0.05),
        "LeNet-5 on CIFAR-10": ("CIFAR10", lambda: models.LeNet5(3, 10, image_size=32), 0.02),
    }
    print(f"{'workload':30} {'variant':17} {'s/epoch':>8} {'vs fit':>7}")
    for label, (name, make_model, lr) in workloads.items():
        results = bench(name, make_model, device, args.epochs, args.limit, args.batch_size, lr)
        for variant, seconds in results.items():
            print(f"{label:30} {variant:17} {seconds:8.3f} {seconds / results['fit']:6.2f}x")


if __name__ == "__main__":
    main()
