"""The training loop every lesson reuses (written by hand first in lesson 03).

``fit`` does exactly what lesson 03's hand-written loop does (forward, loss, zero_grad,
backward, step) plus what a careful loop needs: ``model.train()``/``model.eval()``,
running sums kept on the device (one host sync per epoch, none per batch), optional mixed
precision, a progress bar, and callbacks that receive each epoch's metrics.
"""
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
from .config import is_quick
from .device import get_device, synchronize
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


def _batches(loader, device, channels_last):
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, y.to(device, non_blocking=True)


def _device(model: torch.nn.Module, device) -> torch.device:
    """The device asked for, else the one the model's parameters (or buffers) live on."""
    if device:
        return torch.device(device)
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    if tensor is None:
        raise ValueError(f"the model ({type(model).__name__}) has no parameters or buffers to tell which "
                         "device it runs on: pass device=..., e.g. device=helpers.get_device()")
    return tensor.device


def _check_batch(out: torch.Tensor, y: torch.Tensor) -> None:
    if out.shape[0] != y.shape[0]:
        raise ValueError(f"the model returned {out.shape[0]} outputs for a batch of {y.shape[0]} targets")


class _Totals:
    """Running sums kept on the device (no per-batch sync), read once by :meth:`result`:
    the loss, the correct predictions, and the batches whose inputs hold NaN or inf."""

    def __init__(self, device):
        dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        self.sums = torch.zeros(4, dtype=dtype, device=device)  # [3]: weights not finite (fit)
        self.count = self.batches = 0
        self.classify = None
        self.bad_batches, self.weights_finite = 0, True

    def add(self, loss, out, y, x):
        if self.classify is None:
            self.classify = out.ndim == 2 and out.shape[1] > 1 and not y.is_floating_point()
        n = y.shape[0]
        self.count += n
        self.batches += 1
        self.sums[0] += loss.detach().to(self.sums.dtype) * n
        if self.classify:
            self.sums[1] += (out.argmax(1) == y).sum()
        if x.is_floating_point():
            self.sums[2] += ~torch.isfinite(x).all()

    def result(self, prefix="", model=None):
        """The metrics, in one host sync; with ``model``, also check that its weights are finite."""
        if self.count == 0:
            raise ValueError("the loader yielded no batches")
        params = list(model.parameters()) if model is not None else []
        if params:
            self.sums[3] = ~torch.stack([torch.isfinite(p).all() for p in params]).all()
        loss_sum, correct, bad_batches, bad_weights = self.sums.tolist()  # the one host sync
        self.bad_batches, self.weights_finite = int(bad_batches), not bad_weights
        metrics = {f"{prefix}loss": loss_sum / self.count}
        if self.classify:
            metrics[f"{prefix}acc"] = correct / self.count
        return metrics

    def bad_inputs(self) -> str:
        return (f"{self.bad_batches} of the {self.batches} batches have NaN or inf in their inputs: "
                "fix the data (a corrupt file? a division by a zero std?)")


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
    (flip test-time augmentation, lesson 07)."""
    return _evaluate(model, model, loader, loss_fn, _device(model, device), amp, channels_last, tta)


def _evaluate(model, forward, loader, loss_fn, device, amp, channels_last, tta) -> dict:
    """:func:`evaluate`, running the batches through ``forward`` (``model`` or its compiled form)."""
    totals = _Totals(device)
    dtype = _amp_dtype(device, amp)
    with _evaluating(model), torch.no_grad():
        for x, y in _batches(loader, device, channels_last):
            _check_tta(x, tta)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out = _logits(forward, x, tta)
                _check_batch(out, y)
                loss = loss_fn(out.float(), y)
            totals.add(loss, out, y, x)
    result = totals.result()
    if totals.bad_batches:
        warnings.warn(f"evaluate: {totals.bad_inputs()}", RuntimeWarning, stacklevel=4)
    return result


@torch.no_grad()
def predict(model: torch.nn.Module, loader: Iterable, device=None,
            tta: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predicted classes, targets)`` over a whole loader, on the CPU (lesson 04).

    Feed them to :func:`helpers.plot.confusion_matrix`, or index the misclassified images.
    ``tta=True`` predicts from the mean logits on each image and its mirror image (lesson 07).
    """
    preds, targets = [], []
    with _evaluating(model):
        for x, y in _batches(loader, _device(model, device), channels_last=False):
            _check_tta(x, tta)
            preds.append(_logits(model, x, tta).argmax(1))
            targets.append(y)
    return torch.cat(preds).cpu(), torch.cat(targets).cpu()  # one copy to the host, at the end


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


def fit(model: torch.nn.Module, train_loader: Iterable, optimizer: torch.optim.Optimizer,
        loss_fn=F.cross_entropy, epochs: int = 1, val_loader: Iterable | None = None,
        device=None, scheduler=None, callbacks: Iterable[Callback] = (),
        amp: bool | torch.dtype = False, channels_last: bool = False,
        progress: bool = True, history: History | None = None,
        scheduler_step: str = "epoch", compile: bool | str = False) -> History:
    """Train ``model`` for ``epochs`` epochs and return the :class:`History` (lesson 03).

    - ``scheduler.step()`` runs once per epoch, after the optimiser's steps; with
      ``scheduler_step="batch"`` (OneCycleLR, CyclicLR: lesson 06) after every optimiser step.
      ``ReduceLROnPlateau`` is stepped once per epoch with ``val_loss`` (else ``train_loss``).
      ``metrics["lr"]`` is the learning rate the epoch started with.
    - each callback is called as ``callback(epoch, metrics)`` after every epoch;
      :class:`helpers.plot.LiveCurves` and the loggers in :mod:`helpers.log` are such callables.
      A callback with a true ``stop`` attribute ends training after that epoch
      (:class:`EarlyStopping`, lesson 06).
    - ``amp=True`` runs the forward pass in bfloat16 (float16 with loss scaling on GPUs
      without bfloat16); ``channels_last=True`` stores image batches NHWC for faster convolutions.
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
    """
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f"scheduler_step must be 'epoch' or 'batch', not {scheduler_step!r}")
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if plateau and scheduler_step == "batch":
        raise ValueError("ReduceLROnPlateau watches a metric: step it per epoch (scheduler_step='epoch')")
    per_batch = scheduler is not None and scheduler_step == "batch"
    device = _device(model, device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    forward = _Forward(model, compile)
    history = history if history is not None else History()
    dtype = _amp_dtype(device, amp)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    first = history.epochs + 1
    for epoch in range(first, first + epochs):
        model.train()
        totals = _Totals(device)
        started = time.perf_counter()
        start_lr = optimizer.param_groups[0]["lr"]
        bar = Progress(_batches(train_loader, device, channels_last), total=_len_or_none(train_loader),
                       desc=f"epoch {epoch}/{first + epochs - 1}", enabled=progress)
        for x, y in bar:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out = forward(x)
                _check_batch(out, y)
                loss = loss_fn(out.float(), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if per_batch:
                scheduler.step()
            totals.add(loss, out, y, x)
        synchronize(device)  # the one wait for the device: the clock then covers all the epoch's work
        train_time = time.perf_counter() - started
        metrics = {"epoch": epoch, **totals.result("train_", model), "train_time": train_time}
        if problem := _divergence(epoch, metrics["train_loss"], totals):
            warnings.warn(problem, RuntimeWarning, stacklevel=2)
        if scheduler is not None:
            metrics["lr"] = start_lr
        if val_loader is not None:
            val = _evaluate(model, forward, val_loader, loss_fn, device, amp, channels_last, tta=False)
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


class EarlyStopping:
    """A :func:`fit` callback that stops training once ``monitor`` has not improved for
    ``patience`` epochs, and puts back the weights of the best epoch (lesson 06).

    The best weights are kept as a copy on the model's device (no host sync). ``min_delta``
    is how much better a score must be to count; ``mode`` is ``"min"`` for losses and
    ``"max"`` for accuracies. After training, ``best_epoch`` and ``best`` say what was kept.
    """

    def __init__(self, model: torch.nn.Module, monitor: str = "val_loss", patience: int = 3,
                 mode: str = "min", min_delta: float = 0.0, restore_best: bool = True):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        self.model, self.monitor, self.patience = model, monitor, patience
        self.sign = 1.0 if mode == "min" else -1.0
        self.min_delta, self.restore_best = min_delta, restore_best
        self.best, self.best_epoch, self.best_state = None, None, None
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


def _divergence(epoch: int, loss: float, totals: _Totals) -> str | None:
    """What went wrong in a training epoch, and why (broken inputs, or too high a learning
    rate); None when the loss and the weights are finite."""
    if totals.weights_finite and math.isfinite(loss) and not totals.bad_batches:
        return None
    what = f"epoch {epoch}: the training loss is {loss:.4g}"
    if not totals.weights_finite:
        what += " and the model's weights are no longer finite"
    why = (f"{totals.bad_inputs()}; a lower learning rate will not help" if totals.bad_batches
           else "training diverged; lower the learning rate")
    stop = ("" if totals.weights_finite else " fit stops after this epoch and records its validation metrics "
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
    """``value`` as JSON holds it; a tensor or NumPy scalar becomes a Python number."""
    if isinstance(value, np.generic) or (isinstance(value, torch.Tensor) and value.numel() == 1):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"record_result: {key}={value!r} is a {type(value).__name__}; pass numbers or strings "
                    "(e.g. float(acc), round(seconds, 1))")


def record_result(lesson: str, run: str, device=None, **values) -> dict | None:
    """Append one JSON line ``{"lesson", "run", "device", "mode", **values}`` to the file named
    by the environment variable ``COURSE_RESULTS``; do nothing when it is unset (lesson 07).

    Lessons call it after each headline training run, e.g.
    ``record_result("07", "ResNet-9 on CIFAR-10", device=DEVICE, test_acc=0.93, train_s=14.2)``;
    ``tools/gpu_run.sh`` turns the lines into the README's table of measured results.
    ``device`` defaults to the one the course picks; ``mode`` is quick or full. Returns the
    record written, or None.
    """
    path = os.environ.get("COURSE_RESULTS", "").strip()
    if not path:
        return None
    record = {"lesson": str(lesson), "run": str(run),
              "device": describe_device(device if device is not None else get_device()),
              "mode": "quick" if is_quick() else "full"}
    record.update({key: _json_value(key, value) for key, value in values.items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    return record


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
    never saved.
    """
    path = Path(path)
    if set(extra) & set(_RESERVED):
        raise CheckpointError(f"save_checkpoint: the names {', '.join(_RESERVED)} are taken; rename that extra")
    blob = {name: _plain(value, f"the extra {name!r}") for name, value in extra.items()}
    blob["model"] = model.state_dict()
    if optimizer is not None:
        blob["optimizer"] = optimizer.state_dict()
        blob["optimizer_class"] = type(optimizer).__name__
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(blob, tmp)
        try:  # mmap: the tensors are not read into memory again
            torch.load(tmp, map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:
            raise CheckpointError(f"save_checkpoint did not write {path}: torch.load(weights_only=True) "
                                  f"could not read it back ({_unreadable(exc)})") from exc
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


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
