"""The training loop every lesson reuses (written by hand first in lesson 03).

``fit`` does exactly what lesson 03's hand-written loop does (forward, loss, zero_grad,
backward, step) plus what a careful loop needs: ``model.train()``/``model.eval()``,
running sums kept on the device (one host sync per epoch, none per batch), optional mixed
precision, a progress bar, and callbacks that receive each epoch's metrics.
"""
import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

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


def _batches(loader, device, channels_last):
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, y.to(device, non_blocking=True)


def _device(model: torch.nn.Module, device) -> torch.device:
    """The device asked for, else the one the model's parameters live on."""
    return torch.device(device) if device else next(model.parameters()).device


@contextlib.contextmanager
def _evaluating(model: torch.nn.Module):
    """``model.eval()`` inside the block, then back to the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _check_batch(out: torch.Tensor, y: torch.Tensor) -> None:
    if out.shape[0] != y.shape[0]:
        raise ValueError(f"the model returned {out.shape[0]} outputs for a batch of {y.shape[0]} targets")


class _Totals:
    """Running sums of loss and correct predictions, kept on the device (no per-batch sync)."""

    def __init__(self, device):
        dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        self.sums = torch.zeros(2, dtype=dtype, device=device)
        self.count = 0
        self.classify = None

    def add(self, loss, out, y):
        if self.classify is None:
            self.classify = out.ndim == 2 and out.shape[1] > 1 and not y.is_floating_point()
        n = y.shape[0]
        self.count += n
        self.sums[0] += loss.detach().to(self.sums.dtype) * n
        if self.classify:
            self.sums[1] += (out.argmax(1) == y).sum()

    def result(self, prefix=""):
        if self.count == 0:
            raise ValueError("the loader yielded no batches")
        loss_sum, correct = self.sums.tolist()  # the one host sync
        metrics = {f"{prefix}loss": loss_sum / self.count}
        if self.classify:
            metrics[f"{prefix}acc"] = correct / self.count
        return metrics


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: Iterable, loss_fn=F.cross_entropy, device=None,
             amp: bool | torch.dtype = False, channels_last: bool = False) -> dict:
    """Mean loss (and accuracy, for classifiers) of ``model`` over ``loader`` (lesson 03)."""
    device = _device(model, device)
    totals = _Totals(device)
    dtype = _amp_dtype(device, amp)
    with _evaluating(model):
        for x, y in _batches(loader, device, channels_last):
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out = model(x)
                _check_batch(out, y)
                loss = loss_fn(out.float(), y)
            totals.add(loss, out, y)
    return totals.result()


@torch.no_grad()
def predict(model: torch.nn.Module, loader: Iterable, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predicted classes, targets)`` over a whole loader, on the CPU (lesson 04).

    Feed them to :func:`helpers.plot.confusion_matrix`, or index the misclassified images.
    """
    preds, targets = [], []
    with _evaluating(model):
        for x, y in _batches(loader, _device(model, device), channels_last=False):
            preds.append(model(x).argmax(1))
            targets.append(y)
    return torch.cat(preds).cpu(), torch.cat(targets).cpu()  # one copy to the host, at the end


def fit(model: torch.nn.Module, train_loader: Iterable, optimizer: torch.optim.Optimizer,
        loss_fn=F.cross_entropy, epochs: int = 1, val_loader: Iterable | None = None,
        device=None, scheduler=None, callbacks: Iterable[Callback] = (),
        amp: bool | torch.dtype = False, channels_last: bool = False,
        progress: bool = True, history: History | None = None) -> History:
    """Train ``model`` for ``epochs`` epochs and return the :class:`History` (lesson 03).

    - ``scheduler.step()`` runs once per epoch, after the optimiser's steps.
    - each callback is called as ``callback(epoch, metrics)`` after every epoch;
      :class:`helpers.plot.LiveCurves` and the loggers in :mod:`helpers.log` are such callables.
    - ``amp=True`` runs the forward pass in bfloat16 (float16 with loss scaling on GPUs
      without bfloat16); ``channels_last=True`` stores image batches NHWC for faster convolutions.
    - pass the returned ``history`` back in to continue training where it stopped.
    """
    device = _device(model, device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    history = history if history is not None else History()
    dtype = _amp_dtype(device, amp)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    first = history.epochs + 1
    for epoch in range(first, first + epochs):
        model.train()
        totals = _Totals(device)
        bar = tqdm(_batches(train_loader, device, channels_last), total=_len_or_none(train_loader),
                   desc=f"epoch {epoch}/{first + epochs - 1}", disable=not progress, leave=False)
        for x, y in bar:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out = model(x)
                _check_batch(out, y)
                loss = loss_fn(out.float(), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            totals.add(loss, out, y)
        metrics = {"epoch": epoch, **totals.result("train_")}
        if not math.isfinite(metrics["train_loss"]):
            warnings.warn(f"the training loss is {metrics['train_loss']} in epoch {epoch}: training "
                          "diverged; lower the learning rate", RuntimeWarning, stacklevel=2)
        if scheduler is not None:
            metrics["lr"] = optimizer.param_groups[0]["lr"]
            scheduler.step()
        if val_loader is not None:
            metrics.update({f"val_{k}": v for k, v in
                            evaluate(model, val_loader, loss_fn, device, amp, channels_last).items()})
        history.append(metrics)
        for callback in callbacks:
            callback(epoch, metrics)
        if progress:
            tqdm.write(" | ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in metrics.items()))
    return history


def _len_or_none(loader):
    try:
        return len(loader)
    except TypeError:
        return None


# ---------------------------------------------------------------------------- checkpoints
class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt or does not fit the model."""


def save_checkpoint(path, model: torch.nn.Module, optimizer=None, **extra) -> Path:
    """Save the model's ``state_dict`` (and the optimiser's, and ``extra`` plain values)
    atomically: write a temporary file beside ``path``, then rename it (lesson 04)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"model": model.state_dict(), **extra}
    if optimizer is not None:
        blob["optimizer"] = optimizer.state_dict()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(blob, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path, model: torch.nn.Module, optimizer=None, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True`` (no
    arbitrary code from the file runs) into ``model`` (and ``optimizer``); return the extras."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not isinstance(blob, dict) or "model" not in blob:
        raise CheckpointError(f"{path} holds no 'model' state_dict: was it written by save_checkpoint?")
    try:
        model.load_state_dict(blob["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit this model: {str(exc).splitlines()[0]}") from exc
    if optimizer is not None and "optimizer" in blob:
        optimizer.load_state_dict(blob["optimizer"])
    return {k: v for k, v in blob.items() if k not in {"model", "optimizer"}}
