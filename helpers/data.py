"""Datasets for the lessons, and a loader that keeps a whole dataset on the device.

Each dataset is found in this order (introduced in lesson 03):

1. already in ``data/`` (see :func:`helpers.config.data_root`);
2. in the offline mirror named by ``COURSE_DATA_MIRROR``;
3. downloaded by torchvision into ``data/``.

When all three fail you get :class:`DatasetNotFoundError`, which says which files are
missing, where they were looked for, and how to fix it.
"""
import contextlib
import gzip
import os
import shutil
import socket
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import datasets

from .config import data_mirror, data_root

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
# Per-channel mean and std of each training set, for normalisation.
STATS = {
    "MNIST": ((0.1307,), (0.3081,)),
    "FashionMNIST": ((0.2860,), (0.3530,)),
    "CIFAR10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
HYMENOPTERA_URL = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"
DOWNLOAD_TIMEOUT_S = 30


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is neither in data/, nor in the mirror, nor downloadable."""


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """Make a stalled download fail instead of hanging forever."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _not_found(name: str, missing, looked_in, error, fix) -> DatasetNotFoundError:
    mirror = data_mirror()
    lines = [
        f"{name} is not available.",
        "  missing: " + ", ".join(missing),
        "  looked in: " + "; ".join(str(p) for p in looked_in),
        f"  COURSE_DATA_MIRROR: {mirror if mirror else 'not set'}",
        f"  download failed: {error}" if error else "  download: not attempted (download=False)",
        "How to fix it (any one of these):",
        "  1. connect to the internet and run the cell again: torchvision downloads it into "
        f"{data_root()}",
        f"  2. {fix}",
        "  3. point COURSE_DATA_MIRROR at a folder that holds a copy "
        "(for example: export COURSE_DATA_MIRROR=/path/to/shared/data) and restart the kernel",
    ]
    return DatasetNotFoundError("\n".join(lines))


# ----------------------------------------------------------------- MNIST, FashionMNIST
def _prepare_idx(name: str, download: bool) -> Path:
    """Make sure data/<name>/raw holds the four uncompressed IDX files."""
    raw = data_root() / name / "raw"
    missing = [f for f in IDX_FILES if not (raw / f).is_file()]
    if not missing:
        return raw
    mirror = data_mirror()
    looked_in = [raw]
    if mirror:
        mirror_raw = mirror / name / "raw"
        looked_in.append(mirror_raw)
        sources = [mirror_raw / f for f in missing]
        sources = [s if s.is_file() else s.with_name(s.name + ".gz") for s in sources]
        if all(s.is_file() for s in sources):
            raw.mkdir(parents=True, exist_ok=True)
            for src, fname in zip(sources, missing):
                tmp = raw / f".{fname}.{os.getpid()}.part"  # unique: parallel runs share data/
                opener = gzip.open if src.suffix == ".gz" else open
                try:
                    with opener(src, "rb") as fin, open(tmp, "wb") as fout:
                        shutil.copyfileobj(fin, fout)
                except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt copy
                    tmp.unlink(missing_ok=True)
                    raise DatasetNotFoundError(
                        f"{name}: the mirror's {src} is unreadable ({type(exc).__name__}: {exc}). "
                        "Replace it with a good copy, or unset COURSE_DATA_MIRROR to download instead."
                    ) from None
                tmp.replace(raw / fname)
            return raw
    error = None
    if download:
        cls = getattr(datasets, name)
        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                cls(str(data_root()), train=True, download=True)
            return raw
        except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError...
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    raise _not_found(
        name, missing, looked_in, error,
        f"copy the four files {', '.join(f + '.gz' for f in IDX_FILES)} into {raw}",
    )


def mnist(train: bool = True, transform=None, fashion: bool = False, download: bool = True):
    """MNIST (or Fashion-MNIST with ``fashion=True``) as a torchvision dataset (lesson 03)."""
    name = "FashionMNIST" if fashion else "MNIST"
    _prepare_idx(name, download)
    cls = getattr(datasets, name)
    return cls(str(data_root()), train=train, transform=transform, download=False)


def fashion_mnist(train: bool = True, transform=None, download: bool = True):
    """Fashion-MNIST as a torchvision dataset (lesson 03)."""
    return mnist(train, transform, fashion=True, download=download)


# ---------------------------------------------------------------------------- CIFAR-10
def _cifar_from_folders(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a one-folder-per-class copy of CIFAR-10 into uint8 [N,3,32,32] and labels."""
    images, labels = [], []
    for label, cls in enumerate(CIFAR10_CLASSES):
        files = sorted(p for p in (folder / cls).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        for path in files:
            with Image.open(path) as img:
                images.append(np.asarray(img.convert("RGB")))
            labels.append(label)
    shapes = {a.shape for a in images}
    if shapes != {(32, 32, 3)}:
        raise ValueError(f"{folder} holds images of shapes {sorted(shapes)}, CIFAR-10 is 3x32x32")
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # [N,32,32,3] => [N,3,32,32]
    return x, torch.tensor(labels, dtype=torch.int64)


def cifar10_tensors(train: bool = True, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 as ``(images uint8 [N,3,32,32], labels int64 [N])`` on the CPU (lesson 05).

    From a download these are torchvision's pickles; from a mirror, the one-folder-per-class
    copy (train JPEGs; test from ``test-lossless/`` when present: the original pixels). The
    result is cached in data/CIFAR10/ so the images are decoded once.
    """
    split = "train" if train else "test"
    cache = data_root() / "CIFAR10" / f"{split}_uint8.pt"
    if cache.is_file():
        blob = torch.load(cache, weights_only=True)
        return blob["images"], blob["labels"]
    pickles = data_root() / "cifar-10-batches-py"
    mirror = data_mirror()
    folder = None
    if mirror:
        base = mirror / "cifar10-images"
        for name in ([split] if train else ["test-lossless", "test"]):
            if (base / name).is_dir():
                folder = base / name
                break
    error = None
    if not pickles.is_dir() and folder is not None:
        images, labels = _cifar_from_folders(folder)
    else:
        try:
            if not pickles.is_dir() and not download:
                raise FileNotFoundError("not downloaded")
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                ds = datasets.CIFAR10(str(data_root()), train=train, download=download)
            images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
            labels = torch.tensor(ds.targets, dtype=torch.int64)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}".splitlines()[0] if download else None
            looked = [pickles] + ([mirror / "cifar10-images"] if mirror else [])
            raise _not_found(
                "CIFAR-10", ["cifar-10-batches-py/ (or cifar10-images/<split>/<class>/*.jpg)"], looked,
                error, f"unpack cifar-10-python.tar.gz into {data_root()}",
            ) from None
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.part")
    torch.save({"images": images, "labels": labels}, tmp)
    tmp.replace(cache)
    return images, labels


# -------------------------------------------------------------------- ants and bees
def hymenoptera(split: str = "train", transform=None, download: bool = True):
    """The ants/bees image folders of the transfer-learning tutorial (lesson 07)."""
    if split not in {"train", "val"}:
        raise ValueError(f"split must be 'train' or 'val', not {split!r}")
    local = data_root() / "hymenoptera_data"
    mirror = data_mirror()
    candidates = [local] + ([mirror / "hymenoptera_data"] if mirror else [])
    for base in candidates:
        if (base / split).is_dir():
            return datasets.ImageFolder(str(base / split), transform=transform)
    error = None
    if download:
        from torchvision.datasets.utils import download_and_extract_archive

        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                download_and_extract_archive(HYMENOPTERA_URL, str(data_root()))
            return datasets.ImageFolder(str(local / split), transform=transform)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    raise _not_found(
        "hymenoptera_data (ants and bees)", [f"hymenoptera_data/{split}/"], candidates, error,
        f"download {HYMENOPTERA_URL} and unzip it into {data_root()}",
    )


# --------------------------------------------------------------- the device-resident path
def dataset_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """A torchvision MNIST-style dataset as ``(uint8 [N,C,H,W], int64 [N])`` tensors."""
    images = dataset.data
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(images)
    if images.ndim == 3:  # [N,H,W] -> [N,1,H,W]
        images = images.unsqueeze(1)
    return images, torch.as_tensor(dataset.targets, dtype=torch.int64)


def load_tensors(name: str, train: bool = True, download: bool = True):
    """``(images uint8 [N,C,H,W], labels int64 [N])`` of MNIST, FashionMNIST or CIFAR10."""
    if name == "CIFAR10":
        return cifar10_tensors(train, download)
    if name in {"MNIST", "FashionMNIST"}:
        return dataset_tensors(mnist(train, fashion=name == "FashionMNIST", download=download))
    raise ValueError(f"unknown dataset {name!r}: use one of {sorted(STATS)}")


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 images -> float32 in [0,1] -> (x - mean) / std per channel, on their device."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {images.dtype}")
    if images.ndim != 4 or images.shape[1] != len(mean):
        raise ValueError(f"expected [N,{len(mean)},H,W] images, got shape {tuple(images.shape)}")
    # No copy when mean/std are already tensors on this device (device_loaders makes them once).
    mean = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255 - mean) / std


def random_crop_flip(images: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Batched augmentation on the device: a random crop after zero-padding, then a
    horizontal flip with probability 1/2, each drawn per image (lesson 06)."""
    n, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n, 1), device=images.device)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), device=images.device)
    rows = (dy + torch.arange(h, device=images.device))[:, None, :, None]  # [n,1,h,1]
    cols = (dx + torch.arange(w, device=images.device))[:, None, None, :]  # [n,1,1,w]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    chans = torch.arange(c, device=images.device)[None, :, None, None]
    cropped = padded[batch, chans, rows, cols]
    flip = torch.rand(n, 1, 1, 1, device=images.device) < 0.5
    return torch.where(flip, cropped.flip(3), cropped)


class DeviceLoader:
    """Mini-batches of a dataset held as two tensors on one device (lesson 03).

    ``DataLoader`` fetches samples one by one on the CPU; when the whole dataset fits in
    device memory it is much faster to keep it there and batch by index. Iterating yields
    ``(transform(images[idx]), labels[idx])``; ``transform`` runs on the device, batched.
    """

    def __init__(self, images, labels, batch_size=256, shuffle=False, transform=None,
                 drop_last=False, device=None, seed=0):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        device = torch.device(device) if device is not None else images.device
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform = transform
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)  # CPU: works for every device

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __len__(self) -> int:
        n, b = len(self.labels), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        n = len(self.labels)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.device, non_blocking=True)
        else:
            order = torch.arange(n, device=self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.images[idx]
            yield (self.transform(x) if self.transform else x), self.labels[idx]


def device_loaders(name: str, device, batch_size: int = 256, augment: bool = False,
                   limit: int | None = None, test_batch_size: int = 1024, seed: int = 0):
    """Train and test :class:`DeviceLoader` s for MNIST, FashionMNIST or CIFAR10, normalised
    on the device. ``limit`` keeps ``limit`` training and ``limit // 5`` test images
    (a seeded random subset, for quick mode); ``augment`` adds random crops and flips to the training batches."""
    mean, std = (torch.tensor(v, device=device) for v in STATS[name])
    x_train, y_train = load_tensors(name, train=True)
    x_test, y_test = load_tensors(name, train=False)
    if limit is not None:  # a seeded random subset: the mirror's CIFAR-10 is sorted by class
        g = torch.Generator().manual_seed(seed)
        keep = torch.randperm(len(y_train), generator=g)[:limit]
        x_train, y_train = x_train[keep], y_train[keep]
        keep = torch.randperm(len(y_test), generator=g)[:max(1, limit // 5)]
        x_test, y_test = x_test[keep], y_test[keep]

    def train_transform(x):
        return normalize(random_crop_flip(x) if augment else x, mean, std)

    def test_transform(x):
        return normalize(x, mean, std)

    train = DeviceLoader(x_train, y_train, batch_size, shuffle=True, transform=train_transform,
                         device=device, seed=seed)
    test = DeviceLoader(x_test, y_test, test_batch_size, transform=test_transform, device=device)
    return train, test
