"""Device choice and reproducibility (introduced in lesson 01)."""
import os
import random

import numpy as np
import torch

from . import config

KINDS = ("cuda", "mps", "cpu")  # the devices the course knows, best first


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def available_devices() -> list[str]:
    """The kinds of device this machine can use, best first: e.g. ``["cuda", "cpu"]``."""
    return [kind for kind, ok in (("cuda", torch.cuda.is_available()), ("mps", _mps_available()),
                                  ("cpu", True)) if ok]


def _describe(kinds: list[str]) -> str:
    count = torch.cuda.device_count() if "cuda" in kinds else 0
    return ", ".join(f"cuda (cuda:0 to cuda:{count - 1})" if kind == "cuda" and count > 1 else kind
                     for kind in kinds)


def get_device(name: str | torch.device | None = None) -> torch.device:
    """The best device available: CUDA, then Apple's MPS, then the CPU (lesson 01).

    Pass ``name`` (or set COURSE_DEVICE) to force one: ``cpu``, ``cuda``, ``cuda:1`` or ``mps``
    (case and surrounding spaces do not matter). A device this machine lacks, or a name the
    course does not know, is a ValueError that lists the devices this machine has.
    """
    name = str(name) if isinstance(name, torch.device) else name
    if name:
        source, best = f"get_device({name!r})", "call get_device() for the best one"
    else:
        source, best = f"COURSE_DEVICE={os.environ.get('COURSE_DEVICE')!r}", "unset it for the best one"
    name = (name or os.environ.get("COURSE_DEVICE", "")).strip().lower()
    have = available_devices()
    if not name:
        return torch.device(have[0])
    kind, colon, index = name.partition(":")
    if kind not in KINDS or (colon and not (kind == "cuda" and index.isdigit())):
        raise ValueError(f"{source} is not a device the course knows: use cpu, cuda (or cuda:N) or mps. "
                         f"This machine has: {_describe(have)}.")
    if kind not in have or (index and int(index) >= torch.cuda.device_count()):
        raise ValueError(f"{source} asks for a device this machine does not have. This machine has: "
                         f"{_describe(have)}: pick one of those, or {best}.")
    return torch.device(name)


def synchronize(device) -> None:
    """Wait until ``device`` has run the work queued on it (CUDA and MPS run asynchronously),
    so that a clock read next measures that work (lessons 03 and 07). A no-op on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) in one call."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators


def setup(seed: int = 0) -> torch.device:
    """The first cell of every lesson: seed everything, pick a device, say what was chosen."""
    seed_everything(seed)
    device = get_device()
    mode = "quick" if config.is_quick() else "full"
    print(f"torch {torch.__version__} | device: {device} | mode: {mode} | seed: {seed}")
    return device
