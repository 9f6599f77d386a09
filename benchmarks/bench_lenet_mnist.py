"""LeNet-5 on MNIST: the plain device-resident loop against the fast path, in one run.

Lesson 07's "LeNet-5 on MNIST, fast". LeNet-5 is tiny, so on a GPU each step is a few dozen
small kernels and the loop is bound by launching them (and by host syncs), not by arithmetic.
With MNIST already on the device (helpers' DeviceLoader) it measures seconds per epoch of:

  plain      a hand-written loop, batch 128, fp32, loss.item() every batch (a host sync per step)
  fit        helpers.train.fit, the recipe's batch (256, drop_last): no per-batch sync
  compiled   the same with torch.compile; mode "reduce-overhead" (CUDA graphs: the whole step's
             kernels replayed in one launch) on CUDA

each after an untimed warm-up epoch (compilation, cuDNN autotuning). With ``--recipe`` it then
trains the lesson's recipe (12 epochs, one-cycle, label smoothing 0.1, shifts of up to 2 pixels)
and prints the test accuracy and the training time. Results also go to COURSE_RESULTS
(helpers.train.record_result). Not a test: timings vary from machine to machine.

    python benchmarks/bench_lenet_mnist.py --device cuda --recipe     # what tools/gpu_run.sh runs
    python benchmarks/bench_lenet_mnist.py --device cpu --limit 10000
"""
import argparse
import functools
import time

import torch
import torch.nn.functional as F

import helpers
from helpers import data, models, train
from helpers.device import synchronize

# The lesson's recipe: see lesson 07 and site/gpu.md.
LR, MOMENTUM, WEIGHT_DECAY, LABEL_SMOOTHING, BATCH, RECIPE_EPOCHS = 0.1, 0.9, 5e-4, 0.1, 256, 12
loss_fn = functools.partial(F.cross_entropy, label_smoothing=LABEL_SMOOTHING)


def recipe_optimizer(model, total_steps: int):
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True,
                                weight_decay=WEIGHT_DECAY)
    # max(..., 8): a few steps per phase; a timing run may stop before the schedule ends
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=max(total_steps, 8),
                                                    pct_start=0.25)
    return optimizer, scheduler


def plain_epoch(model, loader, optimizer, device) -> float:
    """One epoch of the loop as first written; returns its seconds."""
    synchronize(device)
    start = time.perf_counter()
    model.train()
    total = 0.0
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()  # a host sync every batch
    synchronize(device)
    return time.perf_counter() - start


def fit_seconds(model, loader, device, epochs: int, compile) -> float:
    """Seconds per epoch of fit over ``epochs`` timed epochs, after one warm-up epoch."""
    optimizer, scheduler = recipe_optimizer(model, (1 + epochs) * len(loader))
    history = train.fit(model, loader, optimizer, loss_fn=loss_fn, epochs=1 + epochs, scheduler=scheduler,
                        scheduler_step="batch", compile=compile, progress=False, device=device)
    return sum(history["train_time"][1:]) / epochs


def run_recipe(args, device, compile) -> None:
    """The lesson's LeNet-5 recipe, in full; a throwaway model compiles first (not timed)."""
    train_loader, test_loader = data.device_loaders("MNIST", device, batch_size=BATCH, augment=True,
                                                    drop_last=True, limit=args.recipe_limit, test_batch_size=2000)
    if compile:
        start = time.perf_counter()
        warm = models.LeNet5().to(device)
        optimizer = torch.optim.SGD(warm.parameters(), lr=0.01, momentum=MOMENTUM, nesterov=True)
        train.fit(warm, train_loader, optimizer, loss_fn=loss_fn, compile=compile, progress=False, device=device)
        print(f"compile warm-up (not timed below): {time.perf_counter() - start:.1f} s", flush=True)
    helpers.seed_everything(0)
    model = models.LeNet5().to(device)
    optimizer, scheduler = recipe_optimizer(model, args.recipe_epochs * len(train_loader))
    history = train.fit(model, train_loader, optimizer, loss_fn=loss_fn, epochs=args.recipe_epochs,
                        scheduler=scheduler, scheduler_step="batch", compile=compile, progress=False, device=device)
    train_s = sum(history["train_time"])
    acc = train.evaluate(model, test_loader)["acc"]
    print(f"recipe: LeNet-5, {args.recipe_epochs} epochs, batch {BATCH}: training {train_s:.1f} s, "
          f"test accuracy {acc:.2%}", flush=True)
    train.record_result("07", "LeNet-5 on MNIST (benchmark recipe)", device=device, epochs=args.recipe_epochs,
                        train_s=round(train_s, 2), test_acc=round(acc, 4))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--limit", type=int, default=60_000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per way")
    parser.add_argument("--plain-batch-size", type=int, default=128)
    parser.add_argument("--compile", choices=["auto", "no", "default", "reduce-overhead", "max-autotune"],
                        default="auto", help="mode of the compiled way (auto: reduce-overhead on CUDA, no elsewhere)")
    parser.add_argument("--recipe", action="store_true", help="then train the lesson's recipe and report accuracy")
    parser.add_argument("--recipe-epochs", type=int, default=RECIPE_EPOCHS)
    parser.add_argument("--recipe-limit", type=int, default=None,
                        help="train the recipe on a seeded subset of this many images (a smoke test)")
    args = parser.parse_args(argv)
    device = helpers.get_device(args.device)
    compile = {"auto": "reduce-overhead" if device.type == "cuda" else False, "no": False}.get(args.compile,
                                                                                              args.compile)
    print(f"torch {torch.__version__}, device {train.describe_device(device)}, {torch.get_num_threads()} CPU "
          f"threads; LeNet-5 on {args.limit} MNIST images per epoch", flush=True)

    seconds = {}
    helpers.seed_everything(0)
    plain_loader, _ = data.device_loaders("MNIST", device, batch_size=args.plain_batch_size, limit=args.limit)
    model = models.LeNet5().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    plain_epoch(model, plain_loader, optimizer, device)  # warm-up
    seconds[f"plain (batch {args.plain_batch_size})"] = sum(
        plain_epoch(model, plain_loader, optimizer, device) for _ in range(args.epochs)) / args.epochs
    loader, _ = data.device_loaders("MNIST", device, batch_size=BATCH, limit=args.limit, drop_last=True)
    seconds[f"fit (batch {BATCH})"] = fit_seconds(models.LeNet5().to(device), loader, device, args.epochs, False)
    if compile:
        seconds[f"fit compile={compile!r}"] = fit_seconds(models.LeNet5().to(device), loader, device, args.epochs,
                                                          compile)

    plain = next(iter(seconds.values()))
    print(f"\n{'way':32} {'s/epoch':>8} {'images/s':>10} {'vs plain':>9}")
    for name, s in seconds.items():
        print(f"{name:32} {s:8.3f} {args.limit / s:10.0f} {plain / s:8.2f}x")
        train.record_result("bench", f"LeNet-5 MNIST {name}", device=device, s_per_epoch=round(s, 3),
                            images_per_s=round(args.limit / s))
    if args.recipe:
        run_recipe(args, device, compile)


if __name__ == "__main__":
    main()
