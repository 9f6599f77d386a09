"""Figures the lessons share: a live training curve and the plots that recur.

Every function returns the matplotlib Figure (or Axes) it drew, so a notebook can keep
it as ``fig = ...`` (nbval then sees no varying repr).
"""
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from .display import in_notebook
from .models import _evaluating
from .train import split_name


class LiveCurves:
    """A training-curve figure that redraws in place after every epoch (lesson 03).

    Use it as a ``fit`` callback: ``fit(..., callbacks=[LiveCurves()])``. Metrics are
    grouped by what they measure: ``train_loss`` and ``val_loss`` share the "loss" panel.
    Outside a notebook (scripts, CI) it only records; call :meth:`figure` to draw.
    """

    def __init__(self, metrics=("loss", "acc"), title=None):
        self.panels = tuple(metrics)
        self.title = title
        self.values: dict[str, list[tuple[int, float]]] = {}
        self._handle = None

    def __call__(self, epoch: int, metrics: dict) -> None:
        for key, value in metrics.items():
            if split_name(key)[0] in self.panels:
                self.values.setdefault(key, []).append((epoch, float(value)))
        if in_notebook():
            from IPython.display import display

            fig = self.figure()
            if self._handle is None:
                self._handle = display(fig, display_id=True)
            else:
                self._handle.update(fig)
            plt.close(fig)

    def figure(self):
        """Draw the recorded curves into a new Figure and return it."""
        fig, axes = plt.subplots(1, len(self.panels), figsize=(4.5 * len(self.panels), 3.2), squeeze=False)
        for ax, panel in zip(axes[0], self.panels):
            for key, points in self.values.items():
                if split_name(key)[0] == panel:
                    epochs, values = zip(*points)
                    ax.plot(epochs, values, marker="o", ms=3, label=key)
            ax.set_xlabel("epoch")
            ax.set_title(panel)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
        if self.title:
            fig.suptitle(self.title)
        fig.tight_layout()
        return fig


def function_grid(functions: dict, x=None, derivatives: bool = True, ncols: int = 3):
    """Plot each ``name -> f`` (a torch function) on ``x`` with its derivative from autograd
    (lessons 02 and 04)."""
    x = torch.linspace(-5, 5, 401) if x is None else x
    nrows = math.ceil(len(functions) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows), squeeze=False)
    for ax, (name, f) in zip(axes.flat, functions.items()):
        xs = x.detach().clone().requires_grad_(True)
        y = f(xs)
        ax.plot(x.numpy(), y.detach().numpy(), label=name)
        if derivatives:
            (dy,) = torch.autograd.grad(y.sum(), xs)
            ax.plot(x.numpy(), dy.numpy(), "--", label=f"{name}'")
        ax.axhline(0, color="gray", lw=0.5)
        ax.axvline(0, color="gray", lw=0.5)
        ax.set_title(name)
        ax.legend(fontsize=8)
    for ax in axes.flat[len(functions):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def surface(f, xlim=(-6, 6), ylim=(-6, 6), n=200, trajectories=(), levels=None, log_levels=True):
    """A 3-D surface and a contour plot of ``f(x, y)`` side by side, with optional
    optimisation trajectories (each an [N, 2] array) drawn on both (lesson 02)."""
    xs = torch.linspace(*xlim, n)
    ys = torch.linspace(*ylim, n)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")
    with torch.no_grad():
        Z = f(X, Y)
    fig = plt.figure(figsize=(12, 5))
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    ax3.plot_surface(X.numpy(), Y.numpy(), Z.numpy(), cmap="viridis", alpha=0.8, linewidth=0)
    ax3.set_xlabel("x")
    ax3.set_ylabel("y")
    ax2 = fig.add_subplot(1, 2, 2)
    if levels is None:
        zmin, zmax = float(Z.min()), float(Z.max())
        levels = np.geomspace(max(zmin, 1e-2), zmax, 30) if log_levels else 30
    contour = ax2.contour(X.numpy(), Y.numpy(), Z.numpy(), levels=levels, cmap="viridis")
    fig.colorbar(contour, ax=ax2, format="%.3g")
    for path in trajectories:
        path = torch.as_tensor(path).detach().cpu().float() if isinstance(path, torch.Tensor) \
            else torch.as_tensor(np.asarray(path), dtype=torch.float32)
        with torch.no_grad():
            z = f(path[:, 0], path[:, 1]).numpy()
        path = path.numpy()
        ax3.plot(path[:, 0], path[:, 1], z, "r.-", ms=2)
        ax2.plot(path[:, 0], path[:, 1], ".-", ms=3)
        ax2.plot(path[-1, 0], path[-1, 1], "r*", ms=12)
    ax2.set_xlabel("x")
    ax2.set_ylabel("y")
    ax2.set_aspect("equal")
    fig.tight_layout()
    return fig


def show_images(images, labels=None, ncols: int = 8, class_names=None, mean=None, std=None,
                cmap="gray", size: float = 1.4):
    """A grid of images ([N,C,H,W] or [N,H,W], uint8 or float) with optional titles.
    Pass ``mean``/``std`` to undo a normalisation before showing (lesson 03)."""
    images = torch.as_tensor(images).detach().cpu()
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected [N,1|3,H,W] or [N,H,W] images, got shape {tuple(images.shape)}")
    images = images.float()
    if mean is not None:
        images = images * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    elif images.max() > 1:
        images = images / 255
    images = images.clamp(0, 1)
    n = len(images)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i].permute(1, 2, 0).numpy()
        ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap=cmap)
        if labels is not None:
            label = labels[i]
            label = int(label) if not isinstance(label, str) else label
            ax.set_title(class_names[label] if class_names is not None else str(label), fontsize=8)
    fig.tight_layout()
    return fig


def confusion_matrix(targets, predictions, num_classes: int) -> torch.Tensor:
    """``cm[i, j]`` = how many samples of true class i were predicted as class j (lesson 04)."""
    targets = torch.as_tensor(targets).flatten().long()
    predictions = torch.as_tensor(predictions).flatten().long()
    if targets.shape != predictions.shape:
        raise ValueError(f"{targets.numel()} targets but {predictions.numel()} predictions")
    if targets.numel() and (min(targets.min(), predictions.min()) < 0
                            or max(targets.max(), predictions.max()) >= num_classes):
        raise ValueError(f"class indices must lie in [0, {num_classes})")
    flat = targets.cpu() * num_classes + predictions.cpu()
    return torch.bincount(flat, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def plot_confusion_matrix(cm, class_names=None, normalize: bool = False):
    """Draw a confusion matrix with its counts (or row-normalised rates) written in (lesson 04)."""
    cm = torch.as_tensor(cm).float()
    shown = cm / cm.sum(1, keepdim=True).clamp(min=1) if normalize else cm
    k = cm.shape[0]
    names = class_names or [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(0.6 * k + 2, 0.6 * k + 1.5))
    im = ax.imshow(shown.numpy(), cmap="Blues")
    fig.colorbar(im, ax=ax)
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = float(shown.max()) if shown.numel() else 0
    for i in range(k):
        for j in range(k):
            value = shown[i, j].item()
            ax.text(j, i, f"{value:.2f}" if normalize else f"{int(value)}", ha="center", va="center",
                    fontsize=7, color="white" if value > top / 2 else "black")
    fig.tight_layout()
    return fig


def _unit_range(t: torch.Tensor) -> torch.Tensor:
    """Stretch ``t`` to [0, 1] (a constant becomes 0.5): each filter or map gets its own contrast."""
    lo, hi = t.min(), t.max()
    return (t - lo) / (hi - lo) if hi > lo else torch.full_like(t, 0.5)


def show_filters(weight, ncols: int = 8, size: float = 0.9):
    """Convolution kernels as a grid of small images, one per output channel (lesson 05).

    ``weight`` is a conv layer's weight ``[out, in, kH, kW]`` (or the layer itself). With 3 input
    channels each filter is drawn in colour (its R, G, B slices); with 1 in grey. Each filter
    is stretched to the full range on its own, so compare patterns, not brightness.
    """
    weight = getattr(weight, "weight", weight)
    weight = torch.as_tensor(weight).detach().float().cpu()
    if weight.ndim != 4 or weight.shape[1] not in (1, 3):
        raise ValueError(f"expected a [out, 1 or 3, kH, kW] weight, got shape {tuple(weight.shape)}; "
                         "for a deeper layer show one input channel: weight[:, c:c+1]")
    n = weight.shape[0]
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            img = _unit_range(weight[i]).permute(1, 2, 0).numpy()  # [in, kH, kW] => [kH, kW, in]
            ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.set_title(str(i), fontsize=7)
    fig.tight_layout()
    return fig


def feature_maps(model: torch.nn.Module, x: torch.Tensor, layers) -> dict:
    """The outputs of ``model``'s submodules named in ``layers`` (names as in
    ``model.named_modules()``, e.g. ``"features.0"``) for the batch ``x`` (lesson 05).

    Runs in eval mode without gradients, then restores the model's mode and removes its hooks.
    Returns ``{name: output on the CPU}`` in the order of ``layers``.
    """
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules]
    if unknown:
        raise ValueError(f"no submodule named {unknown}; the names are {[n for n in modules if n]}")
    outputs = {}
    hooks = [modules[name].register_forward_hook(
        lambda module, inputs, out, name=name: outputs.__setitem__(name, out.detach().cpu()))
        for name in layers]
    try:
        with _evaluating(model), torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return {name: outputs[name] for name in layers}


def show_feature_maps(maps: dict, max_channels: int = 8, size: float = 1.1):
    """One row per layer, its first ``max_channels`` channels for the first image of the
    batch (lesson 05). ``maps`` is ``{name: [b, c, h, w] tensor}``, as :func:`feature_maps`
    returns. Each map is stretched to the full range on its own."""
    if not maps:
        raise ValueError("no feature maps to show")
    for name, m in maps.items():
        if m.ndim != 4:
            raise ValueError(f"{name}: expected a [b, c, h, w] feature map, got shape {tuple(m.shape)}")
    ncols = min(max_channels, max(m.shape[1] for m in maps.values()))
    fig, axes = plt.subplots(len(maps), ncols, figsize=(size * ncols, size * len(maps) + 0.3),
                             squeeze=False)
    for row, (name, m) in zip(axes, maps.items()):
        for c, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= m.shape[1]:
                ax.axis("off")
                continue
            ax.imshow(_unit_range(m[0, c].float()).numpy(), cmap="viridis", vmin=0, vmax=1)
        row[0].set_ylabel(f"{name}\n{tuple(m.shape[1:])}", fontsize=7)
    fig.tight_layout()
    return fig


def compare_curves(histories: dict, metrics=("train_loss", "val_acc"), title=None):
    """Several training runs on the same axes, one panel per metric (lesson 07).

    ``histories`` maps a run's name to what ``fit`` returned (or any ``{metric: [one value per
    epoch]}``); each panel draws ``metric`` against the epoch for every run that recorded it.
    """
    if not histories:
        raise ValueError("no runs to compare")
    missing = [m for m in metrics if not any(m in h for h in histories.values())]
    if missing:
        known = sorted({k for h in histories.values() for k in h})
        raise ValueError(f"no run recorded {missing}; the runs have {known}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, history in histories.items():
            if metric in history:
                values = [float(v) for v in history[metric]]
                ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_top_classes(image, probabilities, class_names, k: int = 3, title=None, size: float = 2.6):
    """An image beside a bar chart of its ``k`` most probable classes (lesson 07).

    ``image`` is ``[C, H, W]`` (uint8, or float in [0, 1]) or a PIL image; ``probabilities`` is
    one vector of class probabilities (softmax of the logits), as long as ``class_names``.
    The bars are drawn best first, from the top.
    """
    probabilities = torch.as_tensor(probabilities).detach().float().cpu().flatten()
    if len(probabilities) != len(class_names):
        raise ValueError(f"{len(probabilities)} probabilities for {len(class_names)} class names")
    if not 1 <= k <= len(class_names):
        raise ValueError(f"k must be between 1 and {len(class_names)}, got {k}")
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"expected a [1|3, H, W] image, got shape {tuple(image.shape)}")
        image = (image.float() / 255 if image.dtype == torch.uint8 else image.float()).clamp(0, 1)
        image = image.permute(1, 2, 0).numpy()
        image = image[:, :, 0] if image.shape[2] == 1 else image
    top = probabilities.topk(k)
    fig, (left, right) = plt.subplots(1, 2, figsize=(2.2 * size, size),
                                      gridspec_kw={"width_ratios": [1, 1.2]})
    left.imshow(image, cmap="gray")
    left.axis("off")
    if title:
        left.set_title(title, fontsize=9)
    names = [class_names[i] for i in top.indices.tolist()]
    right.barh(range(k), top.values.numpy(), color="tab:blue")
    right.set_yticks(range(k), names)
    right.invert_yaxis()  # the most probable class on top
    right.set_xlim(0, 1)
    right.set_xlabel("probability")
    for row, p in enumerate(top.values.tolist()):
        right.text(min(p + 0.02, 0.8), row, f"{p:.1%}", va="center", fontsize=8)
    fig.tight_layout()
    return fig


def format_table(rows, columns=None) -> str:
    """A plain-text table of ``rows`` (a list of dicts), one line per row (lesson 07).

    ``columns`` picks and orders the keys (default: every key, in order of appearance). Ints are
    written with thousands separators, floats with 4 significant digits, a missing value as
    "–"; numbers are right-aligned, text left-aligned. ``print`` the result.
    """
    rows = list(rows)
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    if not columns:
        raise ValueError("a table needs at least one column")

    def cell(value):
        if value is None:
            return "–"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return str(value)
        return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"

    def numeric(column):
        values = [row[column] for row in rows if row.get(column) is not None]
        return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)

    body = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(str(c)), *(len(line[i]) for line in body)) for i, c in enumerate(columns)]
    right = [numeric(c) for c in columns]

    def line(cells):
        return " | ".join(s.rjust(w) if r else s.ljust(w) for s, w, r in zip(cells, widths, right)).rstrip()

    header = line([str(c) for c in columns])
    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([header, rule] + [line(cells) for cells in body])
