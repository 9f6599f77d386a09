"""Train the course's ResNet-9 on CIFAR-10 three ways in one run, and measure what bounds the fast one.

Lesson 07's ResNet project. The same model (helpers.models.resnet9), optimiser (SGD, Nesterov,
one-cycle) and loss (label smoothing 0.2), fed and stepped four ways:

  fast         the helpers' fast path: CIFAR-10 and its augmentation (random crop + flip) on the
               device (device_loaders(..., drop_last=True)), helpers.train.fit (no per-batch host
               sync), and on CUDA bf16 autocast, channels_last and torch.compile
  plain-nw0    the loop most tutorials write: ImageFolder over the JPEG files with PIL transforms
               (RandomCrop, RandomHorizontalFlip, ToTensor, Normalize), DataLoader(num_workers=0),
               fp32, loss.item() every batch
  plain-nw4    the same with num_workers=4
  fixed-batch  the fast path with the data step removed: one batch, already on the device,
               stepped again and again. fast / fixed-batch says how close the fast path is to what
               the model's compute allows; the rest is the data step

It prints images/s of each, the ratios, and the model's arithmetic rate in the fixed-batch
run (3 x forward MACs x 2 FLOPs per image). With ``--recipe`` it then trains the lesson's
recipe (compile warm-up excluded) and prints the test accuracy (flip TTA) on every CIFAR-10
test set and the training time. Results also go to COURSE_RESULTS (helpers.train.record_result).
Not a test: timings vary from machine to machine.

    python benchmarks/bench_cifar_resnet.py --device cuda --recipe            # what tools/gpu_run.sh runs
    python benchmarks/bench_cifar_resnet.py --device cpu --limit 512 --batch-size 64 --steps 3 --warmup 1 --epochs 1
"""
import argparse
import functools
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

import helpers
from helpers import data, models, train
from helpers.config import data_mirror, data_root
from helpers.device import synchronize

# The lesson's recipe (David Page, "How to train your ResNet", in mean-loss terms): see lesson 07 and site/gpu.md.
LR, MOMENTUM, WEIGHT_DECAY, LABEL_SMOOTHING, RECIPE_EPOCHS = 0.4, 0.9, 5e-4, 0.2, 10
loss_fn = functools.partial(F.cross_entropy, label_smoothing=LABEL_SMOOTHING)


def speed_flags(device: torch.device) -> dict:
    """bf16 autocast and channels_last, on CUDA: on a CPU without bf16 units they slow training down."""
    return {"amp": device.type == "cuda", "channels_last": device.type == "cuda"}


def recipe_optimizer(model, total_steps: int):
    """SGD with Nesterov momentum and weight decay, and a linear one-cycle schedule (Page)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True,
                                weight_decay=WEIGHT_DECAY)
    # max(..., 8): a few steps per phase; a timing run may stop before the schedule ends
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=max(total_steps, 8),
                                                    pct_start=0.25, anneal_strategy="linear", cycle_momentum=False)
    return optimizer, scheduler


def fit_rate(model, loader, device, epochs: int, compile) -> tuple[float, float]:
    """(images/s over ``epochs`` timed epochs of fit, seconds of the warm-up epoch before them)."""
    optimizer, scheduler = recipe_optimizer(model, (1 + epochs) * len(loader))
    history = train.fit(model, loader, optimizer, loss_fn=loss_fn, epochs=1 + epochs, scheduler=scheduler,
                        scheduler_step="batch", **speed_flags(device), compile=compile,
                        progress=False, device=device)
    images = epochs * len(loader) * loader.batch_size
    return images / sum(history["train_time"][1:]), history["train_time"][0]


class FixedBatch:
    """A loader without a data step: the same on-device batch, ``steps`` times per epoch."""

    def __init__(self, x, y, steps: int):
        self.x, self.y, self.steps, self.batch_size = x, y, steps, len(y)

    def __len__(self):
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            yield self.x, self.y


def plain_loader(limit: int, batch_size: int, workers: int) -> DataLoader:
    """The tutorial's pipeline: decode each image file and transform it with PIL, one by one."""
    mean, std = data.STATS["CIFAR10"]
    transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(), transforms.Normalize(mean, std)])
    mirror = data_mirror()
    folder = mirror / "cifar10-images" / "train" if mirror else None
    if folder is not None and folder.is_dir():
        dataset = datasets.ImageFolder(str(folder), transform=transform)  # classes sort as CIFAR-10's
    else:  # a download: the pickled arrays, turned into PIL images by torchvision
        dataset = datasets.CIFAR10(str(data_root()), train=True, transform=transform, download=True)
    keep = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:limit]
    return DataLoader(Subset(dataset, keep.tolist()), batch_size=batch_size, shuffle=True, num_workers=workers)


def plain_rate(model, loader, device, warmup: int, steps: int) -> float:
    """images/s of the tutorial loop over ``steps`` batches, after ``warmup`` untimed ones."""
    optimizer, scheduler = recipe_optimizer(model, warmup + steps)
    model.train()
    total, seen, start = 0.0, 0, None
    for i, (x, y) in enumerate(loader):
        if i == warmup:
            synchronize(device)
            start = time.perf_counter()
        x, y = x.to(device), y.to(device)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item()  # what most tutorials do: a host sync every batch
        seen += len(y) if i >= warmup else 0
        if i + 1 == warmup + steps:
            break
    synchronize(device)
    return seen / (time.perf_counter() - start)


def run_recipe(args, device, compile) -> None:
    """The lesson's ResNet-9 recipe, in full: a throwaway model compiles first (excluded)."""
    test_sets = data.cifar10_test_sets()
    mean, std = (torch.tensor(v, device=device) for v in data.STATS["CIFAR10"])
    keep = slice(args.recipe_limit)  # a smoke test scores the first images only
    tests = {name: data.DeviceLoader(x[keep], y[keep], 1024, device=device,
                                     transform=lambda x: data.normalize(x, mean, std))
             for name, (x, y) in test_sets.items()}
    train_loader, _ = data.device_loaders("CIFAR10", device, batch_size=args.batch_size, augment=True,
                                          drop_last=True, limit=args.recipe_limit)
    if compile:  # compile on the same shapes with a throwaway model, outside the timed run
        start = time.perf_counter()
        warm_loader = FixedBatch(*next(iter(train_loader)), steps=3)
        warm = models.resnet9(width=args.width).to(device)
        optimizer = torch.optim.SGD(warm.parameters(), lr=0.01, momentum=MOMENTUM, nesterov=True)
        train.fit(warm, warm_loader, optimizer, loss_fn=loss_fn, **speed_flags(device), compile=compile,
                  progress=False, device=device)
        print(f"compile warm-up (not timed below): {time.perf_counter() - start:.1f} s", flush=True)
    helpers.seed_everything(0)
    model = models.resnet9(width=args.width).to(device)
    optimizer, scheduler = recipe_optimizer(model, args.recipe_epochs * len(train_loader))
    history = train.fit(model, train_loader, optimizer, loss_fn=loss_fn, epochs=args.recipe_epochs,
                        scheduler=scheduler, scheduler_step="batch", **speed_flags(device),
                        compile=compile, progress=False, device=device)
    train_s = sum(history["train_time"])
    accs = {name: train.evaluate(model, loader, **speed_flags(device), tta=True)["acc"]
            for name, loader in tests.items()}
    print(f"recipe: ResNet-9, {args.recipe_epochs} epochs, batch {args.batch_size}: training {train_s:.1f} s; "
          + ", ".join(f"{name} {acc:.2%} (flip TTA)" for name, acc in accs.items()), flush=True)
    train.record_result("07", "ResNet-9 on CIFAR-10 (benchmark recipe)", device=device, epochs=args.recipe_epochs,
                        train_s=round(train_s, 2), **{f"{name.replace('-', '_')}_acc": round(acc, 4)
                                                      for name, acc in accs.items()})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--limit", type=int, default=50_000, help="training images used (a seeded subset)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20, help="timed batches of each plain loop")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches before them")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (over --limit images) of the fast path")
    parser.add_argument("--workers", type=int, default=4, help="num_workers of the second plain loop")
    parser.add_argument("--width", type=int, default=64, help="ResNet-9's first width (64; smaller for a smoke test)")
    parser.add_argument("--compile", choices=["auto", "no", "default", "reduce-overhead", "max-autotune"],
                        default="auto", help="torch.compile mode of the fast path (auto: default on CUDA, "
                                             "no elsewhere)")
    parser.add_argument("--recipe", action="store_true", help="then train the lesson's recipe and report accuracy")
    parser.add_argument("--recipe-epochs", type=int, default=RECIPE_EPOCHS)
    parser.add_argument("--recipe-limit", type=int, default=None,
                        help="train the recipe on a seeded subset of this many images (a smoke test)")
    args = parser.parse_args(argv)
    device = helpers.get_device(args.device)
    compile = {"auto": device.type == "cuda", "no": False}.get(args.compile, args.compile)
    if args.limit < (args.warmup + args.steps) * args.batch_size:
        parser.error(f"--limit {args.limit} holds fewer than (warmup + steps) * batch-size = "
                     f"{(args.warmup + args.steps) * args.batch_size} images for the plain loops")
    print(f"torch {torch.__version__}, device {train.describe_device(device)}, {torch.get_num_threads()} CPU "
          f"threads; ResNet-9 (width {args.width}), batch {args.batch_size}, {args.limit} training images, "
          f"compile {compile}", flush=True)

    rates = {}
    helpers.seed_everything(0)
    loader, _ = data.device_loaders("CIFAR10", device, batch_size=args.batch_size, augment=True,
                                    limit=args.limit, drop_last=True)
    rates["fast"], warmup_s = fit_rate(models.resnet9(width=args.width).to(device), loader, device, args.epochs,
                                       compile)
    print(f"  fast: warm-up epoch {warmup_s:.1f} s{' (with compiling)' if compile else ''}, then "
          f"{rates['fast']:.0f} images/s", flush=True)
    x, y = next(iter(loader))
    fixed = FixedBatch(x, y, steps=len(loader))
    rates["fixed-batch"], _ = fit_rate(models.resnet9(width=args.width).to(device), fixed, device, args.epochs,
                                       compile)
    for name, workers in (("plain-nw0", 0), (f"plain-nw{args.workers}", args.workers)):
        helpers.seed_everything(0)
        rates[name] = plain_rate(models.resnet9(width=args.width).to(device),
                                 plain_loader(args.limit, args.batch_size, workers), device, args.warmup, args.steps)
        print(f"  {name}: {rates[name]:.0f} images/s", flush=True)

    print(f"\n{'way':12} {'images/s':>10} {'fast is':>10}")
    for name, rate in rates.items():
        print(f"{name:12} {rate:10.0f} {rates['fast'] / rate:9.2f}x")
        train.record_result("bench", f"ResNet-9 CIFAR-10 {name}", device=device, images_per_s=round(rate),
                            batch=args.batch_size)
    macs = models.count_macs(models.resnet9(width=args.width), (3, 32, 32))
    flops = 3 * 2 * macs * rates["fixed-batch"]  # forward + backward (about twice the forward)
    print(f"\nthe fast path runs at {rates['fast'] / rates['fixed-batch']:.0%} of the fixed-batch rate: the data "
          f"step costs {1 / rates['fast'] - 1 / rates['fixed-batch']:.2e} s per image. Fixed batch: "
          f"{macs / 1e6:.0f} MMACs forward per image, {flops / 1e12:.2f} TFLOP/s of convolution and matmul work.")
    if args.recipe:
        run_recipe(args, device, compile)


if __name__ == "__main__":
    main()
