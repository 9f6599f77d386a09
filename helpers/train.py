"""The training loop every lesson reuses (written by hand first in lesson 03).

``fit`` does exactly what lesson 03's hand-written loop does (forward, loss, zero_grad,
backward, step) plus what a careful loop needs: ``model.train()``/``model.eval()``,
running sums kept on the device (one host sync per epoch, none per batch), optional mixed
precision, a progress bar, and callbacks that receive each epoch's metrics.
"""
import contextlib
import errno
import itertools
import json
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .check import clean_message
from .config import is_quick, remove_stale_temporaries
from .device import channels_last_is_safe, distributed, get_device, is_main_process, synchronize, world_size
from .display import Progress
from .models import _evaluating

Callback = Callable[[int, dict], None]


SPLITS = ("train", "val", "test")


def split_name(name: str) -> tuple[str, str]:
    """``fit`` names metrics ``<split>_<what>``: ``"train_loss"`` -> ``("loss", "train")``;
    a name without a split stays whole, ``"lr"`` -> ``("lr", "lr")``. Returns (what, split):
    the plots and loggers draw one chart per *what*, one line per split (lesson 04)."""
    prefix, _, rest = name.partition("_")
    if prefix in SPLITS and rest:
        return rest, prefix
    return name, name


class History(dict):
    """Per-epoch metrics: ``history["val_acc"]`` is a list with one value per epoch."""

    def append(self, metrics: dict) -> None:
        for key, value in metrics.items():
            self.setdefault(key, []).append(value)

    @property
    def epochs(self) -> int:
        return len(self.get("epoch", []))


def _amp_dtype(device: torch.device, amp: bool | torch.dtype):
    if amp is False or amp is None:
        return None
    if isinstance(amp, torch.dtype):
        return amp
    return torch.float16 if device.type == "cuda" and not torch.cuda.is_bf16_supported() else torch.bfloat16


def _autocast(device: torch.device, dtype):
    """``torch.autocast`` to ``dtype``; no context at all without mixed precision (it costs per batch)."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def _layout(channels_last: bool, device: torch.device) -> bool:
    """``channels_last``, unless it is not safe on this device: then a warning and False."""
    if channels_last and not channels_last_is_safe(device):
        warnings.warn("channels_last=True is ignored on this CPU: without AVX-512, oneDNN's channels_last "
                      "kernels can hang or crash while training (strided 1x1 convolutions), so the batches "
                      "stay in the default layout, which gives the same results "
                      "(helpers.device.channels_last_is_safe)", RuntimeWarning, stacklevel=3)
        return False
    return channels_last


def _describe_batch(batch) -> str:
    if isinstance(batch, torch.Tensor):
        return f"a single tensor of shape {tuple(batch.shape)}"
    if isinstance(batch, dict):
        return f"a dict with the keys {sorted(map(str, batch))}"
    if isinstance(batch, (tuple, list)):
        return f"a {type(batch).__name__} of {len(batch)} items"
    return f"a {type(batch).__name__}"


def _batches(loader, device, channels_last, name="the loader"):
    """``(x, y)`` of each batch of ``loader``, on ``device``; anything but a pair of tensors is
    one TypeError that says what the loader gave instead."""
    for batch in loader:
        try:
            x, y = batch if not isinstance(batch, torch.Tensor) else (None, None)  # a tensor unpacks by rows
        except (TypeError, ValueError):
            x = y = None
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
            raise TypeError(f"{name} must yield (inputs, targets) pairs of tensors, as a DataLoader over a "
                            f"torchvision dataset or a TensorDataset does; it yielded {_describe_batch(batch)}")
        x = x.to(device, non_blocking=True)
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, y.to(device, non_blocking=True)


def _device(model: torch.nn.Module, device) -> torch.device:
    """The device asked for (checked as :func:`helpers.get_device` checks it), else the one the
    model's parameters (or buffers) live on."""
    if device is not None and device != "":
        return get_device(device)
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    if tensor is None:
        raise ValueError(f"the model ({type(model).__name__}) has no parameters or buffers to tell which "
                         "device it runs on: pass device=..., e.g. device=helpers.get_device()")
    return tensor.device


def _check_output(out, y: torch.Tensor, model) -> None:
    if not isinstance(out, torch.Tensor):
        hint = (" torchvision's GoogLeNet and Inception v3 return such a tuple in training mode: build them "
                "with aux_logits=False (helpers.models.torchvision_model does), or return out.logits from "
                "a forward of your own." if hasattr(out, "logits") else "")
        raise TypeError(f"the model ({type(model).__name__}) returned a {type(out).__name__}, not a tensor: "
                        f"fit, evaluate and predict need its outputs (the logits) as one tensor.{hint}")
    if out.ndim == 0:
        raise ValueError(f"the model returned a single number for a batch of {y.shape[0]} targets: it must "
                         "return one row of outputs per input")
    if out.shape[0] != y.shape[0]:
        raise ValueError(f"the model returned {out.shape[0]} outputs for a batch of {y.shape[0]} targets")


def _check_loss(loss) -> None:
    if not isinstance(loss, torch.Tensor) or loss.ndim:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return one number, the batch's mean loss (a 0-d tensor); it returned "
                         f"{shape} (reduction='none'?)")


IGNORE_INDEX = -100  # F.cross_entropy's default ignore_index: such targets count in no metric


class _Totals:
    """What one pass over a loader adds up to. Each batch only appends its loss (and, for a
    classifier, its argmax hits) to a list on the device: no per-batch host sync, no extra
    kernels. :meth:`result` sums them in one host sync. Targets of IGNORE_INDEX (-100), which
    ``cross_entropy`` leaves out of the loss, count in neither the loss nor the accuracy."""

    def __init__(self, device):
        self.device = device
        self.dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        self.losses, self.sizes, self.hits, self.targets = [], [], [], []
        self.classify = None
        self.weights_finite = True

    @property
    def batches(self) -> int:
        return len(self.losses)

    def add(self, loss, out, y):
        if self.classify is None:
            self.classify = out.ndim == 2 and out.shape[1] > 1 and not y.is_floating_point()
        self.losses.append(loss.detach())
        self.sizes.append(y.shape[0])
        if self.classify:
            self.hits.append(out.argmax(1) == y)
            self.targets.append(y)

    def result(self, prefix="", model=None) -> dict:
        """The mean loss (and accuracy), in one host sync; with ``model``, also whether its
        weights are still finite (``weights_finite``). Under torchrun the sums of every rank
        are added up first (one all-reduce), so every rank gets the same, global metrics."""
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        loss_sum = count = correct = zero
        if self.losses:
            losses = torch.stack(self.losses).to(self.dtype)
            sizes = torch.tensor(self.sizes, device=self.device)
            if self.classify:  # each batch's mean covers its labelled targets: weigh it by their number
                labelled = (torch.cat(self.targets) != IGNORE_INDEX).to(self.dtype)
                batch_of = torch.repeat_interleave(torch.arange(len(self.sizes), device=self.device), sizes,
                                                   output_size=sum(self.sizes))  # a known size: no device sync
                weights = torch.zeros(len(self.sizes), dtype=self.dtype, device=self.device).index_add_(
                    0, batch_of, labelled)
                correct = torch.cat(self.hits).sum().to(self.dtype)
            else:
                weights = sizes.to(self.dtype)
            loss_sum = torch.where(weights > 0, losses * weights, 0).sum()  # an all-ignored batch's mean is nan
            count = weights.sum()
        params = [p.detach() for p in model.parameters()] if model is not None else []
        finite = torch.stack([torch.isfinite(p).all() for p in params]).all() if params else torch.tensor(True)
        values = torch.stack([loss_sum, count, correct, (~finite).to(self.device, self.dtype),
                              torch.tensor(float(self.batches), dtype=self.dtype, device=self.device),
                              torch.tensor(float(bool(self.classify)), dtype=self.dtype, device=self.device)])
        if distributed():
            import torch.distributed as dist

            dist.all_reduce(values)
        loss_sum, count, correct, not_finite, batches, classify = values.tolist()  # the one host sync
        self.weights_finite, self.global_batches = not not_finite, int(batches)
        metrics = {f"{prefix}loss": loss_sum / count if count else math.nan}
        if classify:
            metrics[f"{prefix}acc"] = correct / count if count else math.nan
        return metrics


def _sum_over_ranks(*numbers: float) -> list[float]:
    """The numbers added up over every rank of a torchrun job (themselves outside one)."""
    if not distributed():
        return list(numbers)
    import torch.distributed as dist

    summed = [None] * world_size()
    dist.all_gather_object(summed, numbers)
    return [sum(column) for column in zip(*summed)]


def _max_over_ranks(number: float) -> float:
    if not distributed():
        return number
    import torch.distributed as dist

    every = [None] * world_size()
    dist.all_gather_object(every, number)
    return max(every)


def _warn(message: str, category=RuntimeWarning, stacklevel: int = 2) -> None:
    """A warning from rank 0 only: under torchrun the other ranks would repeat it word for word."""
    if is_main_process():
        warnings.warn(message, category, stacklevel=stacklevel + 1)


def _count_bad_inputs(loader, device) -> tuple[int, int]:
    """``(batches whose inputs hold NaN or inf, batches)`` of one more pass over ``loader``: run
    only after a non-finite loss, so that the training loop itself checks nothing per batch."""
    bad = total = 0
    for x, _ in _batches(loader, device, channels_last=False):
        total += 1
        bad += bool(x.is_floating_point() and not torch.isfinite(x).all())
    bad, total = _sum_over_ranks(bad, total)
    return int(bad), int(total)


def _bad_inputs(bad: int, total: int) -> str:
    return (f"{bad} of the {total} batches have NaN or inf in their inputs: "
            "fix the data (a corrupt file? a division by a zero std?)")


def _no_batches(loader, name: str) -> str:
    """Why ``loader`` yielded no batches, as well as can be told."""
    why = "it holds no samples"
    dataset, labels = getattr(loader, "dataset", None), getattr(loader, "labels", None)  # DataLoader, DeviceLoader
    size = (len(dataset) if hasattr(dataset, "__len__") else
            len(labels) if isinstance(labels, torch.Tensor) else None)
    batch_size = getattr(loader, "batch_size", None)
    if iter(loader) is loader:
        why = ("it is an iterator (a generator?), which is used up after one pass: pass something that can "
               "be gone through again, such as a list, a DataLoader or a DeviceLoader")
    elif getattr(loader, "drop_last", False) and size and batch_size and size < batch_size:
        why = (f"drop_last=True drops the only batch: its {size} samples are fewer than batch_size="
               f"{batch_size}; use a smaller batch_size or drop_last=False")
    elif size is not None:
        why = f"it holds {size} samples"
    return f"{name} yielded no batches: {why}"


def _logits(forward, x, tta: bool):
    """``forward(x)``; with ``tta``, the mean of the logits on ``x`` and on its mirror image
    ``x.flip(3)`` (flip test-time augmentation, lesson 07). Logits are averaged, not
    probabilities: for a loss on the result it is the same kind of output the model gives."""
    out = forward(x)
    return (out + forward(x.flip(3))) / 2 if tta else out


def _check_tta(x: torch.Tensor, tta: bool) -> None:
    if tta and x.ndim != 4:
        raise ValueError(f"tta=True flips images horizontally: it needs [N,C,H,W] batches, got shape "
                         f"{tuple(x.shape)}")


def evaluate(model: torch.nn.Module, loader: Iterable, loss_fn=F.cross_entropy, device=None,
             amp: bool | torch.dtype = False, channels_last: bool = False, tta: bool = False) -> dict:
    """Mean loss (and accuracy, for classifiers) of ``model`` over ``loader`` (lesson 03).

    ``tta=True`` scores the mean of the logits on each image and on its horizontal mirror
    (flip test-time augmentation, lesson 07). Targets of -100 (``cross_entropy``'s
    ``ignore_index``) count in neither the loss nor the accuracy."""
    device = _device(model, device)
    return _evaluate(model, model, loader, loss_fn, device, amp, _layout(channels_last, device), tta,
                     name="the loader", stacklevel=3)


def _evaluate(model, forward, loader, loss_fn, device, amp, channels_last, tta, name, stacklevel) -> dict:
    """:func:`evaluate`, running the batches through ``forward`` (``model`` or its compiled form)."""
    _check_sharded(loader, name)
    totals = _Totals(device)
    dtype = _amp_dtype(device, amp)
    with _evaluating(model), torch.no_grad():
        for x, y in _batches(loader, device, channels_last, name):
            _check_tta(x, tta)
            with _autocast(device, dtype):
                out = _logits(forward, x, tta)
                _check_output(out, y, model)
                loss = loss_fn(out.float(), y)
            _check_loss(loss)
            totals.add(loss, out, y)
    result = totals.result()
    if not totals.global_batches:
        raise ValueError(_no_batches(loader, name))
    if not math.isfinite(result["loss"]):
        bad, total = _count_bad_inputs(loader, device)
        if bad:
            _warn(f"evaluate: {_bad_inputs(bad, total)}", stacklevel=stacklevel)
    return result


@torch.no_grad()
def predict(model: torch.nn.Module, loader: Iterable, device=None,
            tta: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predicted classes, targets)`` over a whole loader, on the CPU (lesson 04).

    Feed them to :func:`helpers.plot.confusion_matrix`, or index the misclassified images.
    ``tta=True`` predicts from the mean logits on each image and its mirror image (lesson 07).
    Under torchrun every rank predicts its share, and every rank gets all the predictions back,
    in the loader's order (an unshuffled DeviceLoader's: the dataset's).
    """
    _check_sharded(loader, "the loader")
    preds, targets = [], []
    with _evaluating(model):
        for x, y in _batches(loader, _device(model, device), channels_last=False):
            _check_tta(x, tta)
            out = _logits(model, x, tta)
            _check_output(out, y, model)
            preds.append(out.argmax(1))
            targets.append(y)
    preds = torch.cat(preds).cpu() if preds else torch.zeros(0, dtype=torch.int64)  # one copy, at the end
    targets = torch.cat(targets).cpu() if targets else torch.zeros(0, dtype=torch.int64)
    if distributed():
        preds, targets = _gather_shares(preds), _gather_shares(targets)
    if not len(preds):
        raise ValueError(_no_batches(loader, "the loader"))
    return preds, targets


def _gather_shares(share: torch.Tensor) -> torch.Tensor:
    """Every rank's share of an unshuffled sharded loader, back in the loader's order: rank r
    held the samples r, r + world_size, r + 2 world_size, ..."""
    import torch.distributed as dist

    shares = [None] * world_size()
    dist.all_gather_object(shares, share)
    whole = torch.empty(sum(len(s) for s in shares), dtype=share.dtype)
    for r, part in enumerate(shares):
        whole[r::world_size()] = part
    return whole


def _check_sharded(loader, name: str) -> None:
    """Under torchrun, a DataLoader without a DistributedSampler would give every rank the
    whole dataset: the same data N times over. One clear error instead."""
    from torch.utils.data import DataLoader, DistributedSampler

    if not distributed() or not isinstance(loader, DataLoader):
        return
    sampler = getattr(loader.batch_sampler, "sampler", None) or loader.sampler
    if not isinstance(sampler, DistributedSampler):
        raise ValueError(
            f"{name} is a DataLoader without a DistributedSampler: under torchrun every one of the "
            f"{world_size()} ranks would go through all of its data. Pass "
            "DataLoader(dataset, batch_size=..., sampler=DistributedSampler(dataset)) (fit calls its "
            "set_epoch for you), or a helpers.data.DeviceLoader, which gives each rank its share")


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class _Forward:
    """What ``fit`` calls for a forward pass (lesson 07): ``torch.compile(model)`` when asked,
    else the model itself. Compiling happens at the first call; when it fails (no C++
    compiler or triton, an unsupported platform or torch) a one-line warning says why and
    the model runs eagerly from then on. An error of the model itself is raised as without
    compile. The weights stay in ``model``: its state_dict keys do not change."""

    def __init__(self, model: torch.nn.Module, compile: bool | str):
        self.model, self.compiled = model, None
        if compile is False or compile is None:
            return
        if compile is not True and compile not in COMPILE_MODES:
            raise ValueError(f"compile must be True, False or a torch.compile mode "
                             f"({', '.join(map(repr, COMPILE_MODES))}), not {compile!r}")
        try:
            self.compiled = torch.compile(model, mode=None if compile is True else compile)
        except Exception as exc:  # torch.compile refuses this platform up front
            self._fall_back(exc)

    def __call__(self, x):
        if self.compiled is None:
            return self.model(x)
        try:
            return self.compiled(x)
        except Exception as exc:
            out = self.model(x)  # a bug in the model raises here, as it would without compile
            self._fall_back(exc)
            return out

    def _fall_back(self, exc: Exception) -> None:
        self.compiled = None
        warnings.warn(f"fit: torch.compile failed ({type(exc).__name__}: {clean_message(exc)}); "
                      "training without it (eager mode), which gives the same results, only slower",
                      RuntimeWarning, stacklevel=4)


def _per_batch_scheduler(scheduler, epochs: int) -> str | None:
    """The name of a scheduler built to be stepped after every batch, when stepping it once per
    epoch (``scheduler_step="epoch"``) would not even finish one cycle in ``epochs`` epochs."""
    lr_scheduler = torch.optim.lr_scheduler
    steps = (getattr(scheduler, "total_steps", None) if isinstance(scheduler, lr_scheduler.OneCycleLR) else
             getattr(scheduler, "total_size", None) if isinstance(scheduler, lr_scheduler.CyclicLR) else None)
    return type(scheduler).__name__ if steps is not None and steps > epochs else None


def _check_reusable(loader, name: str, epochs: int) -> None:
    """A loader that can be gone through only once (a generator) would be empty after epoch 1."""
    if loader is not None and epochs > 1 and iter(loader) is loader:
        raise TypeError(f"{name} is an iterator (a generator?), which is used up after one pass, but fit "
                        f"goes through it {epochs} times: pass something that can be gone through again, "
                        "such as a list, a DataLoader or a DeviceLoader")


def fit(model: torch.nn.Module, train_loader: Iterable, optimizer: torch.optim.Optimizer,
        loss_fn=F.cross_entropy, epochs: int = 1, val_loader: Iterable | None = None,
        device=None, scheduler=None, callbacks: Iterable[Callback] = (),
        amp: bool | torch.dtype = False, channels_last: bool = False,
        progress: bool = True, history: History | None = None,
        scheduler_step: str = "epoch", compile: bool | str = False,
        penalty: Callable[[torch.nn.Module], torch.Tensor] | None = None,
        sync_batchnorm: bool = False) -> History:
    """Train ``model`` for ``epochs`` epochs and return the :class:`History` (lesson 03).

    - ``scheduler.step()`` runs once per epoch, after the optimiser's steps; with
      ``scheduler_step="batch"`` (OneCycleLR, CyclicLR: lesson 06) after every optimiser step
      (stepping those per epoch is warned about). ``ReduceLROnPlateau`` is stepped once per
      epoch with ``val_loss`` (else ``train_loss``). ``metrics["lr"]`` is the learning rate
      the epoch started with.
    - ``penalty(model)``, when given, is added to the loss that training minimises (an L1
      penalty, lesson 06). The metrics leave it out: ``train_loss`` and ``val_loss`` are both
      ``loss_fn`` alone, so they can be compared.
    - each callback is called as ``callback(epoch, metrics)`` after every epoch;
      :class:`helpers.plot.LiveCurves` and the loggers in :mod:`helpers.log` are such callables.
      A callback with a true ``stop`` attribute ends training after that epoch
      (:class:`EarlyStopping`, lesson 06); one with an ``on_fit_start(history)`` method has it
      called before the first epoch; one with a ``monitor`` attribute naming a ``val_`` metric
      needs ``val_loader``.
    - ``amp=True`` runs the forward pass in bfloat16 (float16 with loss scaling on GPUs
      without bfloat16); ``channels_last=True`` stores image batches NHWC for faster convolutions
      (ignored, with a warning, on CPUs where it is unsafe: :func:`helpers.device.channels_last_is_safe`).
    - ``compile=True`` runs the model through ``torch.compile`` (a string picks its mode:
      ``"reduce-overhead"`` uses CUDA graphs, ``"max-autotune"``), for training and validation;
      ``model`` keeps the weights, with the same state_dict keys. Where compiling fails, one
      warning says why and training goes on eagerly (lesson 07).
    - ``metrics["train_time"]`` is the seconds spent in the epoch's training loop (the device
      is synchronised once, at its end): ``sum(history["train_time"])`` is the training time.
    - pass the returned ``history`` back in to continue training where it stopped.
    - a non-finite loss is a RuntimeWarning that says whether the inputs hold NaN/inf (fix
      the data) or the training diverged (lower the learning rate). Once the weights are no
      longer finite, ``fit`` stops after that epoch and records its validation metrics as nan.
    - targets of -100 (``cross_entropy``'s ``ignore_index``) count in no metric.
    - under ``torchrun`` (lesson 09) the same call trains data-parallel: the model is wrapped
      in ``DistributedDataParallel`` (its gradients averaged over the ranks at every step),
      each DeviceLoader gives each rank its share of every epoch (a DataLoader needs a
      ``DistributedSampler``, whose ``set_epoch`` fit calls), and the metrics are summed over
      the ranks, so every rank's History is the same. Only rank 0 shows the progress bar and
      warns. BatchNorm layers keep per-rank batch statistics (rank 0's running averages are
      copied to the others at each forward pass); ``sync_batchnorm=True`` computes them over
      the whole global batch instead (``nn.SyncBatchNorm``, CUDA only).
    """
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f"scheduler_step must be 'epoch' or 'batch', not {scheduler_step!r}")
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if plateau and scheduler_step == "batch":
        raise ValueError("ReduceLROnPlateau watches a metric: step it per epoch (scheduler_step='epoch')")
    per_batch = scheduler is not None and scheduler_step == "batch"
    if not per_batch and (name := _per_batch_scheduler(scheduler, epochs)):
        _warn(f"{name} is built to be stepped after every batch, but fit steps it once per epoch, so "
              f"in {epochs} epochs it never finishes its cycle: pass scheduler_step='batch'")
    _check_reusable(train_loader, "train_loader", epochs)
    _check_reusable(val_loader, "val_loader", epochs)
    callbacks = list(callbacks)
    for callback in callbacks:
        monitor = getattr(callback, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("val_") and val_loader is None:
            raise ValueError(f"{type(callback).__name__} watches {monitor!r}, which only a validation set gives: "
                             "pass val_loader=..., or have it watch a training metric")
    device = _device(model, device)
    channels_last = _layout(channels_last, device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    forward = evaluate_forward = _Forward(model, compile)
    if distributed():
        _check_sharded(train_loader, "train_loader")
        _check_sharded(val_loader, "val_loader")
        forward = _Forward(_data_parallel(model, device, sync_batchnorm), compile)
        progress = progress and is_main_process()
    history = history if history is not None else History()
    for callback in callbacks:
        if hasattr(callback, "on_fit_start"):
            callback.on_fit_start(history)
    dtype = _amp_dtype(device, amp)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    first = history.epochs + 1
    for epoch in range(first, first + epochs):
        model.train()
        totals = _Totals(device)
        started = time.perf_counter()
        start_lr = optimizer.param_groups[0]["lr"]
        for loader in (train_loader, val_loader):  # a DistributedSampler's shuffle of this epoch
            if hasattr(getattr(loader, "sampler", None), "set_epoch"):
                loader.sampler.set_epoch(epoch)
        bar = Progress(_batches(train_loader, device, channels_last, "train_loader"),
                       total=_len_or_none(train_loader), desc=f"epoch {epoch}/{first + epochs - 1}",
                       enabled=progress)
        try:
            for x, y in bar:
                with _autocast(device, dtype):
                    out = forward(x)
                    _check_output(out, y, model)
                    loss = loss_fn(out.float(), y)
                    objective = loss + penalty(model) if penalty is not None else loss
                _check_loss(loss)
                optimizer.zero_grad(set_to_none=True)
                if scaler is None:
                    objective.backward()
                    optimizer.step()
                else:
                    scaler.scale(objective).backward()
                    scaler.step(optimizer)
                    scaler.update()
                if per_batch:
                    scheduler.step()
                totals.add(loss, out, y)
        except KeyboardInterrupt:
            bar.finish("interrupted")
            raise
        synchronize(device)  # the one wait for the device: the clock then covers all the epoch's work
        train_time = time.perf_counter() - started
        metrics = {"epoch": epoch, **totals.result("train_", model), "train_time": _max_over_ranks(train_time)}
        if not totals.global_batches:
            raise ValueError(_no_batches(train_loader, "train_loader"))
        if problem := _divergence(epoch, metrics["train_loss"], totals.weights_finite, train_loader, device):
            _warn(problem)
        if scheduler is not None:
            metrics["lr"] = start_lr
        if val_loader is not None:
            _broadcast_buffers(model)  # validate rank 0's model, the one save_checkpoint writes
            val = _evaluate(model, evaluate_forward, val_loader, loss_fn, device, amp, channels_last, tta=False,
                            name="val_loader", stacklevel=3)
            # Scores of non-finite weights mean nothing (an all-NaN model still "predicts" class 0).
            metrics.update({f"val_{k}": v if totals.weights_finite else math.nan for k, v in val.items()})
        if plateau:
            scheduler.step(metrics.get("val_loss", metrics["train_loss"]))
        elif scheduler is not None and not per_batch:
            scheduler.step()
        history.append(metrics)
        for callback in callbacks:
            callback(epoch, metrics)
        bar.finish(" | ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in metrics.items() if k not in ("epoch", "train_time")))
        if not totals.weights_finite or any(getattr(cb, "stop", False) for cb in callbacks):
            break
    return history


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """The model's trainable parameters in two optimiser groups (lesson 06): the weights of
    convolutions and linear layers get ``weight_decay``; biases and normalisation parameters
    (every parameter with fewer than two dimensions: BatchNorm's and LayerNorm's scale and
    shift) get none, because decaying them pulls a layer's offset or scale towards zero for
    nothing. ``torch.optim.SGD(param_groups(model, 5e-4), lr=0.1, momentum=0.9)``."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _broadcast_buffers(model: torch.nn.Module) -> None:
    """Under torchrun, copy rank 0's buffers (BatchNorm's running statistics) to every rank.
    DDP does so at the start of each training forward pass, but each rank's last pass then
    updates its own copy: without this, the ranks would validate slightly different models."""
    if not distributed():
        return
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer.data, src=0)


def _data_parallel(model: torch.nn.Module, device: torch.device, sync_batchnorm: bool):
    """``model`` wrapped in DistributedDataParallel for this rank's device (lesson 09)."""
    from torch.nn.parallel import DistributedDataParallel

    if sync_batchnorm:
        if device.type != "cuda":
            raise ValueError("sync_batchnorm=True needs CUDA: PyTorch's SyncBatchNorm does not run on the CPU "
                             "(there each rank normalises with its own batch statistics)")
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _guess_mode(monitor: str) -> str | None:
    """``"max"`` for an accuracy, ``"min"`` for a loss or an error, None when the name does not say."""
    name = monitor.lower()
    if "acc" in name:
        return "max"
    if "loss" in name or "err" in name:
        return "min"
    return None


class EarlyStopping:
    """A :func:`fit` callback that stops training once ``monitor`` has not improved for
    ``patience`` epochs, and puts back the weights of the best epoch (lesson 06).

    The best weights are kept as a copy on the model's device (no host sync). ``min_delta``
    is how much better a score must be to count; ``mode`` is ``"min"`` (lower is better) or
    ``"max"``; left out, it follows the name: ``"max"`` for an accuracy, ``"min"`` for a loss.
    After training, ``best_epoch`` and ``best`` say what was kept.

    Used again in a later ``fit``: continuing the same history (``fit(..., history=history)``)
    it keeps the best score so far, so the continued run stops unless it beats it; with a new
    history it starts afresh. Either way its patience starts again.
    """

    def __init__(self, model: torch.nn.Module, monitor: str = "val_loss", patience: int = 3,
                 mode: str | None = None, min_delta: float = 0.0, restore_best: bool = True):
        guessed = _guess_mode(monitor)
        if mode is None:
            if guessed is None:
                raise ValueError(f"EarlyStopping cannot tell from the name {monitor!r} whether higher or lower "
                                 "is better: pass mode='min' or mode='max'")
            mode = guessed
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
        if guessed is not None and mode != guessed:
            warnings.warn(f"EarlyStopping(monitor={monitor!r}, mode={mode!r}) keeps the epoch with the "
                          f"{'lowest' if mode == 'min' else 'highest'} {monitor}: for an "
                          f"{'accuracy' if guessed == 'max' else 'loss'} that is the worst one. "
                          f"Pass mode={guessed!r} (or leave mode out)", UserWarning, stacklevel=2)
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        self.model, self.monitor, self.patience, self.mode = model, monitor, patience, mode
        self.sign = 1.0 if mode == "min" else -1.0
        self.min_delta, self.restore_best = min_delta, restore_best
        self._forget()

    def _forget(self) -> None:
        self.best, self.best_epoch, self.best_state = None, None, None
        self.waited, self.stop = 0, False

    def on_fit_start(self, history: History) -> None:
        """Called by :func:`fit` before its first epoch: patience starts again; the best score is
        kept only when this run continues the history it was reached in."""
        if self.best_epoch is None or history.epochs < self.best_epoch:
            self._forget()
        self.waited, self.stop = 0, False

    def __call__(self, epoch: int, metrics: dict) -> None:
        if self.monitor not in metrics:
            raise KeyError(f"EarlyStopping watches {self.monitor!r}, but the metrics are "
                           f"{sorted(metrics)}: pass val_loader to fit, or monitor another one")
        score = metrics[self.monitor]
        if math.isfinite(score) and (self.best is None
                                     or self.sign * (self.best - score) > self.min_delta):
            self.best, self.best_epoch, self.waited = score, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            return
        self.waited += 1
        if self.waited >= self.patience:
            self.stop = True
            if self.restore_best:
                self.restore()

    def restore(self) -> None:
        """Load the best epoch's weights back into the model."""
        if self.best_state is None:
            raise RuntimeError("EarlyStopping has seen no finite score yet: nothing to restore")
        self.model.load_state_dict(self.best_state)


def _divergence(epoch: int, loss: float, weights_finite: bool, loader, device) -> str | None:
    """What went wrong in a training epoch, and why (broken inputs, or too high a learning
    rate); None when the loss and the weights are finite. The inputs are looked at only then."""
    if weights_finite and math.isfinite(loss):
        return None
    bad, total = _count_bad_inputs(loader, device)
    what = f"epoch {epoch}: the training loss is {loss:.4g}"
    if not weights_finite:
        what += " and the model's weights are no longer finite"
    why = (f"{_bad_inputs(bad, total)}; a lower learning rate will not help" if bad
           else "training diverged; lower the learning rate")
    stop = ("" if weights_finite else " fit stops after this epoch and records its validation metrics "
            "as nan; re-create the model (or load a checkpoint) before training again.")
    return f"{what}: {why}.{stop}"


def _len_or_none(loader):
    try:
        return len(loader)
    except TypeError:
        return None


def describe_device(device) -> str:
    """A device in words, for a results table: ``"cuda (NVIDIA H100 80GB HBM3)"``, ``"cpu (2 cores)"``."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({os.cpu_count()} cores)"
    return device.type


def _json_value(key: str, value):
    """``value`` as JSON holds it; a tensor or NumPy scalar becomes a Python number, and a
    number that is not finite (a diverged run's nan) becomes None (JSON's null)."""
    if isinstance(value, np.generic) or (isinstance(value, torch.Tensor) and value.numel() == 1):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"record_result: {key}={value!r} is a {type(value).__name__}; pass numbers or strings "
                    "(e.g. float(acc), round(seconds, 1))")


def record_result(lesson: str, run: str, device=None, **values) -> dict | None:
    """Append one JSON line ``{"lesson", "run", "device", "mode", **values}`` to the file named
    by the environment variable ``COURSE_RESULTS``; do nothing when it is unset (lesson 07).

    Lessons call it after each headline training run, e.g.
    ``record_result("07", "ResNet-9 on CIFAR-10", device=DEVICE, test_acc=0.93, train_s=14.2)``;
    ``tools/gpu_run.sh`` turns the lines into the table of expected results (site/results.md).
    ``device`` defaults to the one the course picks; ``mode`` is quick or full; a nan or inf
    is written as null. Returns the record written, or None (also on the ranks other than 0
    of a torchrun job: rank 0 writes once for all). A file that cannot be written is
    a warning, not an error: the lesson's training has run, and its results are on screen.
    """
    path = os.environ.get("COURSE_RESULTS", "").strip()
    if not path or not is_main_process():  # under torchrun, rank 0 records for every rank
        return None
    record = {"lesson": str(lesson), "run": str(run),
              "device": describe_device(device if device is not None else get_device()),
              "mode": "quick" if is_quick() else "full"}
    record.update({key: _json_value(key, value) for key, value in values.items()})
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, allow_nan=False) + "\n")
    except OSError as exc:
        warnings.warn(f"record_result could not write to COURSE_RESULTS={str(path)!r} ({_os_error(exc)}); "
                      "this result was not recorded. Point COURSE_RESULTS at a file you can write, or unset it.",
                      RuntimeWarning, stacklevel=2)
        return None
    return record


def _os_error(exc: BaseException) -> str:
    """An OS error in a few words: ``"IsADirectoryError: Is a directory"``."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"{type(exc).__name__}: {clean_message(exc)}"


# ---------------------------------------------------------------------------- checkpoints
class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt or does not fit the model."""


# Kept beside the states; every other key of the file is an extra.
_RESERVED = ("model", "optimizer", "optimizer_class")
# What torch.load(weights_only=True) reads back (torch.Size is a tuple: it is checked first).
_PLAIN = (type(None), bool, int, float, str, bytes, torch.Tensor, torch.Size, torch.dtype, torch.device)
_UNPICKLER_ERROR = re.compile(r"WeightsUnpickler error:\s*(.+?)(?:\.? Please|\n|$)")


def _plain(value, where: str):
    """``value`` in a form ``torch.load(weights_only=True)`` reads back: a dict subclass (a
    :class:`History`) becomes a dict, a NumPy scalar a Python number; anything else that is
    not a number, string, tensor, list, tuple or dict is a CheckpointError naming ``where``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {_plain(k, f"a key of {where}"): _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    raise CheckpointError(
        f"save_checkpoint: {where} is of type {type(value).__name__}, which torch.load(weights_only=True) "
        "cannot read back. Save plain values: numbers, strings, tensors, and lists or dicts of them "
        "(e.g. float(x), str(path), torch.as_tensor(array)).")


def _unreadable(exc: Exception) -> str:
    """Why ``torch.load`` failed, in one line. Its message is a page of advice; for a
    ``weights_only`` refusal the line to keep is the one that names the culprit."""
    culprit = _UNPICKLER_ERROR.search(clean_message(exc, max_lines=None))
    return f"{type(exc).__name__}: {culprit.group(1).strip() if culprit else clean_message(exc)}"


def _read(path: Path, map_location="cpu"):
    """``torch.load(path, weights_only=True)``; a CheckpointError that says why when it fails."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint ({_unreadable(exc)})") from exc


def _detail(exc: Exception, limit: int = 12) -> str:
    """The lines of an error message that say what went wrong, at most ``limit`` of them."""
    lines = clean_message(exc, max_lines=None).splitlines()
    more = [f"... and {len(lines) - limit} more lines"] if len(lines) > limit else []
    return "\n".join(lines[:limit] + more)


def save_checkpoint(path, model: torch.nn.Module, optimizer=None, **extra) -> Path:
    """Save the model's ``state_dict`` (and the optimiser's, and ``extra`` plain values)
    atomically: write a temporary file beside ``path``, then rename it (lesson 04).

    Extras must be plain values, which ``weights_only=True`` can load: a :class:`History`
    is saved as a dict of lists (``History(extras["history"])`` turns it back), a NumPy
    scalar as a Python number; anything else is refused with a CheckpointError. The written
    file is loaded back once before it replaces ``path``, so a file that cannot be loaded is
    never saved. A folder that cannot be written (read-only, a full disk) is one
    CheckpointError naming ``path`` and the cause; no temporary file is left behind, and
    those of earlier saves that were killed are removed.

    Under torchrun only rank 0 writes (every rank holds the same weights); the others return
    at once, so call ``torch.distributed.barrier()`` before another rank reads the file.
    """
    path = Path(path)
    if not is_main_process():
        return path
    if set(extra) & set(_RESERVED):
        raise CheckpointError(f"save_checkpoint: the names {', '.join(_RESERVED)} are taken; rename that extra")
    blob = {name: _plain(value, f"the extra {name!r}") for name, value in extra.items()}
    blob["model"] = model.state_dict()
    if optimizer is not None:
        blob["optimizer"] = optimizer.state_dict()
        blob["optimizer_class"] = type(optimizer).__name__
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent, path.name, ".tmp")
        torch.save(blob, tmp)
    except (OSError, RuntimeError) as exc:  # torch's writer reports a full disk as a RuntimeError
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise CheckpointError(f"save_checkpoint could not write {path} ({_write_error(exc, path.parent)})") from None
    try:
        try:  # mmap: the tensors are not read into memory again
            torch.load(tmp, map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:
            raise CheckpointError(f"save_checkpoint did not write {path}: torch.load(weights_only=True) "
                                  f"could not read it back ({_unreadable(exc)})") from exc
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path


def _write_error(exc: BaseException, folder: Path) -> str:
    """Why a file could not be written into ``folder``, and what to do about it."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return f"{_os_error(exc)}: free some space, or save somewhere else"
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{_os_error(exc)}: {folder} cannot be written; save somewhere you can write"
    if isinstance(exc, OSError):
        return _os_error(exc)
    text = clean_message(exc, max_lines=None)
    if "unexpected pos" in text or "failed writing" in text.lower():
        return "the file could not be written out in full: is the disk full? Free some space, or save elsewhere"
    if "cannot be opened" in text:
        return f"the file cannot be created: can {folder} be written?"
    return f"{type(exc).__name__}: {clean_message(exc)}"


def _optimizer_misfit(blob: dict, optimizer) -> str | None:
    """Why the optimiser state in ``blob`` does not fit ``optimizer``; None when it does."""
    if "optimizer" not in blob:
        return "it holds no optimizer state (it was saved without one): pass no optimizer"
    saved_class, own_class = blob.get("optimizer_class"), type(optimizer).__name__
    if saved_class and saved_class != own_class:
        return f"it holds the state of optimizer {saved_class}, this one is {own_class}"
    try:
        saved_groups, saved_state = blob["optimizer"]["param_groups"], blob["optimizer"]["state"]
    except (KeyError, TypeError):
        return "its 'optimizer' entry is not an optimizer's state_dict"
    groups = optimizer.param_groups
    if len(saved_groups) != len(groups):
        return f"it holds {len(saved_groups)} parameter groups, this optimizer has {len(groups)}"
    for i, (saved, group) in enumerate(zip(saved_groups, groups)):
        if len(saved["params"]) != len(group["params"]):
            return (f"its parameter group {i} holds {len(saved['params'])} parameters, "
                    f"this optimizer's holds {len(group['params'])}")
        for index, param in zip(saved["params"], group["params"]):
            for key, value in saved_state.get(index, {}).items():
                if isinstance(value, torch.Tensor) and value.ndim and value.shape != param.shape:
                    return (f"its {key!r} for parameter {index} has shape {tuple(value.shape)}, "
                            f"the parameter has shape {tuple(param.shape)}")
    return None


def load_checkpoint(path, model: torch.nn.Module, optimizer=None, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True`` (no
    arbitrary code from the file runs) into ``model`` (and ``optimizer``); return the extras.

    All or nothing: when the model's or the optimiser's state does not fit, a CheckpointError
    says why and both are left as they were.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    blob = _read(path, map_location)
    if not isinstance(blob, dict) or "model" not in blob:
        raise CheckpointError(f"{path} holds no 'model' state_dict: was it written by save_checkpoint?")
    if optimizer is not None and (why := _optimizer_misfit(blob, optimizer)):
        raise CheckpointError(f"{path} does not fit this optimizer: {why}. Nothing was loaded.")
    # load_state_dict copies what fits before it complains: keep the old weights to put back.
    before = {name: value.detach().clone() for name, value in model.state_dict().items()}
    part = "model"
    try:
        model.load_state_dict(blob["model"])
        part = "optimizer"
        if optimizer is not None:
            optimizer.load_state_dict(blob["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        model.load_state_dict(before)
        raise CheckpointError(f"{path} does not fit this {part}; nothing was loaded:\n{_detail(exc)}") from exc
    return {k: v for k, v in blob.items() if k not in _RESERVED}
