"""Device choice and reproducibility (introduced in lesson 01)."""
import os
import random

import numpy as np
import torch

from . import config


def get_device(name: str | None = None) -> torch.device:
    """The best device available: CUDA, then Apple's MPS, then the CPU.

    Pass ``name`` (or set COURSE_DEVICE) to force one, e.g. ``"cpu"``.
    """
    name = name or os.environ.get("COURSE_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


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
