"""Datasets for the lessons, and a loader that keeps a whole dataset on the device.

Each dataset is found in this order (introduced in lesson 03):

1. already in ``data/`` (see :func:`helpers.config.data_root`);
2. in the offline mirror named by ``COURSE_DATA_MIRROR``;
3. downloaded by torchvision into ``data/``.

When all three fail you get :class:`DatasetNotFoundError`, which says which files are
missing, where they were looked for, and how to fix it. A damaged copy gets one too, naming
the file and the fix: MNIST's IDX files are checked against their headers and their md5s,
CIFAR-10's folders for missing classes and images that do not decode, the ants/bees photos
against the md5 of each file. A folder that cannot be written (a full disk, a read-only
place) is a :class:`DataWriteError`, never blamed on the data.
"""
import contextlib
import errno
import functools
import gzip
import hashlib
import math
import numbers
import os
import shlex
import shutil
import socket
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import datasets

from .check import clean_message
from .config import data_mirror, data_root, is_quick, remove_stale_temporaries
from .device import distributed, rank, world_size

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# md5 of each uncompressed IDX file, checked when a file is copied from the mirror.
# torchvision's table (datasets.MNIST.resources) holds the md5s of the .gz files instead, but a
# recompressed .gz (the course mirror's Fashion-MNIST is one) holds the same data under another
# md5, so the course checks what is inside.
IDX_MD5 = {
    "MNIST": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
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
CIFAR10_SIZES = {"train": 50_000, "test": 10_000}
# An empty file of this name in the mirror's cifar10-images/ folder declares the copy partial
# on purpose (a small sample for a class room, say): its sizes are then not warned about.
PARTIAL_MARK = "PARTIAL"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
# The files torchvision's CIFAR-10 download unpacks into cifar-10-batches-py/.
CIFAR10_PICKLES = ("batches.meta", "test_batch") + tuple(f"data_batch_{i}" for i in range(1, 6))
HYMENOPTERA_URL = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"
HYMENOPTERA_CLASSES = ("ants", "bees")
# md5 of every file of the ants/bees set, as in the course's offline mirror (hymenoptera_data.md5).
HYMENOPTERA_MD5 = Path(__file__).resolve().parent / "hymenoptera_data.md5"
DOWNLOAD_TIMEOUT_S = 30


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is neither in data/, nor in the mirror, nor downloadable; or a copy is damaged (lesson 03)."""


class DataWriteError(OSError):
    """A dataset (or its cache) could not be written into the data folder: a full disk, a
    read-only place. The data themselves are fine."""


@contextlib.contextmanager
def _writing(what: str, target: Path):
    """Turn an OSError of the block (a full disk, a read-only folder) into a DataWriteError."""
    try:
        yield
    except OSError as exc:
        raise _write_error(what, target, exc) from None


def _write_error(what: str, target: Path, exc: OSError) -> DataWriteError:
    """A DataWriteError that names what could not be written, where, why, and the fix."""
    why = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        fix = "free some space, or point COURSE_DATA_ROOT at a folder with room, and restart the kernel"
    else:
        fix = "point COURSE_DATA_ROOT at a folder you can write, and restart the kernel"
    return DataWriteError(exc.errno, f"{what}: cannot write {target} ({why}): {fix}")


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """Make a stalled download fail instead of hanging forever."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _download_error(exc: Exception) -> str:
    """A failed download's message with its cause, which torchvision puts on the later lines."""
    return clean_message(f"{type(exc).__name__}: {exc}", max_lines=8)


def _not_found(name: str, missing, looked_in, error, fix) -> DatasetNotFoundError:
    mirror = data_mirror()
    lines = [
        f"{name} is not available.",
        "  missing: " + ", ".join(missing),
        "  looked in: " + "; ".join(str(p) for p in looked_in),
        f"  COURSE_DATA_MIRROR: {mirror if mirror else 'not set'}",
        "  download failed: " + error.replace("\n", "\n    ") if error
        else "  download: not attempted (download=False)",
        "How to fix it (any one of these):",
        "  1. connect to the internet and run the cell again: torchvision downloads it into "
        f"{data_root()}",
        f"  2. {fix}",
        "  3. point COURSE_DATA_MIRROR at a folder that holds a copy "
        "(for example: export COURSE_DATA_MIRROR=/path/to/shared/data) and restart the kernel",
    ]
    return DatasetNotFoundError("\n".join(lines))


# ----------------------------------------------------------------- MNIST, FashionMNIST
def _idx_problem(path: Path, fname: str) -> str | None:
    """What is wrong with the uncompressed IDX file ``path`` (holding ``fname``), or None.

    An IDX file of unsigned bytes starts with the magic number 0x00000801 (labels, 1-d) or
    0x00000803 (images, 3-d), then one 4-byte big-endian size per dimension, then the data:
    its length must be exactly what the header announces (a truncated copy is not)."""
    ndim = 3 if "idx3" in fname else 1
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(4 + 4 * ndim)
    if len(header) < 4 + 4 * ndim:
        return f"it holds {size} bytes, fewer than an IDX header"
    magic = int.from_bytes(header[:4], "big")
    if magic != 0x800 + ndim:
        return (f"it does not start with the IDX magic number 0x{0x800 + ndim:08x} "
                f"(it starts with 0x{magic:08x}), so it is not an uncompressed {fname}")
    dims = [int.from_bytes(header[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    expected = len(header) + math.prod(dims)
    if size != expected:
        return (f"its header announces {' x '.join(map(str, dims))} values ({expected} bytes in all), "
                f"but the file holds {size} bytes")
    return None


@functools.lru_cache(maxsize=32)
def _md5_of(path: str, size: int, mtime_ns: int) -> str:
    """The md5 of a file, computed once per version of it (its size and mtime) in a process."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _file_md5(path: Path) -> str:
    stat = path.stat()
    return _md5_of(str(path), stat.st_size, stat.st_mtime_ns)


def _not_the_file(name: str, fname: str, md5: str) -> str | None:
    """Why a file whose contents have md5 ``md5`` is not ``name``'s ``fname``, or None."""
    if md5 == IDX_MD5[name][fname]:
        return None
    other = next((n for n, table in IDX_MD5.items() if n != name and table.get(fname) == md5), None)
    what = f"{other}'s {fname}, not {name}'s" if other else f"not {name}'s {fname}"
    return f"its contents (md5 {md5}) are {what} (md5 {IDX_MD5[name][fname]})"


class _ReadError(Exception):
    """A source file could not be read (as opposed to the copy not being written)."""


def _copy_idx_from_mirror(name: str, src: Path, raw: Path, fname: str) -> None:
    """Decompress (or copy) one mirror file into ``raw/fname``, only if it checks out. A file
    that cannot be read is the mirror's fault; one that cannot be written is the data
    folder's (a DataWriteError); no ``.part`` file is left behind either way."""
    remove_stale_temporaries(raw, fname, ".part")
    tmp = raw / f".{fname}.{os.getpid()}.part"  # unique: parallel runs share data/
    opener = gzip.open if src.suffix == ".gz" else open
    md5 = hashlib.md5()
    problem = None
    try:
        try:
            fin = opener(src, "rb")
        except OSError as exc:
            raise _ReadError(exc) from None
        with fin, open(tmp, "wb") as fout:
            while True:
                try:
                    chunk = fin.read(1 << 20)
                except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .gz
                    raise _ReadError(exc) from None
                if not chunk:
                    break
                md5.update(chunk)
                fout.write(chunk)
        problem = _idx_problem(tmp, fname) or _not_the_file(name, fname, md5.hexdigest())
        if problem is None:
            tmp.replace(raw / fname)
    except _ReadError as exc:
        cause = exc.args[0]
        problem = f"it is unreadable ({type(cause).__name__}: {clean_message(cause)})"
    except OSError as exc:
        raise _write_error(name, raw / fname, exc) from None
    finally:
        tmp.unlink(missing_ok=True)
    if problem:
        raise DatasetNotFoundError(
            f"{name}: the mirror's file {src} is damaged: {problem}. Nothing was copied into {raw}.\n"
            "Replace it with a good copy, or unset COURSE_DATA_MIRROR to download instead."
        )


def _prepare_idx(name: str, download: bool) -> Path:
    """Make sure data/<name>/raw holds the four uncompressed IDX files, each checked against
    its header and its md5 (files put there by hand, say Fashion-MNIST's in MNIST/raw, too)."""
    raw = data_root() / name / "raw"
    for fname in IDX_FILES:  # a damaged file left by an older version would poison every load
        path = raw / fname
        problem = path.is_file() and (_idx_problem(path, fname) or _not_the_file(name, fname, _file_md5(path)))
        if problem:
            raise DatasetNotFoundError(
                f"{name}: {path} is not a good copy: {problem}.\n"
                f"Remove it, then run the cell again to copy or download a good one:\n"
                f"  rm {shlex.quote(str(path))}"
            )
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
            try:
                raw.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _write_error(name, raw, exc) from None
            for src, fname in zip(sources, missing):
                _copy_idx_from_mirror(name, src, raw, fname)
            return raw
    error = None
    if download:
        cls = getattr(datasets, name)
        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                cls(str(data_root()), train=True, download=True)
            return raw
        except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError...
            error = _download_error(exc)
    raise _not_found(
        name, missing, looked_in, error,
        f"copy the files {', '.join(f + '.gz' for f in missing)} into {raw}",
    )


def mnist(train: bool = True, transform=None, fashion: bool = False, download: bool = True):
    """MNIST (or Fashion-MNIST with ``fashion=True``) as a torchvision dataset (lesson 03).

    Each IDX file is checked against its header and its md5: a damaged one (or another
    dataset's file) is a DatasetNotFoundError that names it and says how to remove it.
    """
    name = "FashionMNIST" if fashion else "MNIST"
    _prepare_idx(name, download)
    cls = getattr(datasets, name)
    return cls(str(data_root()), train=train, transform=transform, download=False)


def fashion_mnist(train: bool = True, transform=None, download: bool = True):
    """Fashion-MNIST as a torchvision dataset (lesson 03)."""
    return mnist(train, transform, fashion=True, download=download)


# ---------------------------------------------------------------------------- CIFAR-10
def _cifar_class_files(folder: Path) -> list[list[Path]]:
    """The image files of each class folder, in class order; numbered names in numeric order."""
    missing = [folder / c for c in CIFAR10_CLASSES if not (folder / c).is_dir()]
    if missing:
        raise DatasetNotFoundError(
            f"CIFAR-10: class folder missing: {', '.join(map(str, missing))}.\n"
            f"{folder} needs one folder per class ({', '.join(CIFAR10_CLASSES)}). Copy the missing "
            "folders from a full copy, or unset COURSE_DATA_MIRROR to download CIFAR-10 instead."
        )

    def key(path: Path):
        return (0, int(path.stem), path.name) if path.stem.isdigit() else (1, 0, path.name)

    return [sorted((p for p in (folder / c).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=key)
            for c in CIFAR10_CLASSES]


def load_rgb(path) -> Image.Image:
    """An image file as an 8-bit RGB PIL image (lessons 05 and 07). A 16-bit greyscale PNG is
    scaled to 8 bits (PIL's ``convert("RGB")`` would clip it to white); a file that does not
    decode is a DatasetNotFoundError that names it."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode.startswith("I"):  # 16-bit grey: "I;16", "I;16B", or "I" from older Pillow
                pixels = np.asarray(img, dtype=np.int64).clip(0, 65535) >> 8
                return Image.fromarray(pixels.astype(np.uint8), "L").convert("RGB")
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:  # PIL: not an image, truncated, broken
        raise DatasetNotFoundError(
            f"cannot decode {path} ({type(exc).__name__}: {clean_message(exc)}): replace it with a good copy, "
            "or delete it"
        ) from None


def _read_cifar_image(path: Path) -> np.ndarray:
    """One image file as a uint8 [32,32,3] array, or an error that names the file."""
    try:
        pixels = np.asarray(load_rgb(path))
    except DatasetNotFoundError as exc:
        raise DatasetNotFoundError(
            f"CIFAR-10: {exc}.\nOr unset COURSE_DATA_MIRROR to download CIFAR-10 instead.") from None
    if pixels.shape != (32, 32, 3):
        raise ValueError(f"{path} is {pixels.shape[1]}x{pixels.shape[0]} pixels: CIFAR-10 images are 3x32x32")
    return pixels


def _cifar_from_folders(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a one-folder-per-class copy of CIFAR-10 into uint8 [N,3,32,32] and labels.

    When the file names are numbers that are unique across the whole split, they are the
    images' indices in torchvision's batches (the mirror's ``test-lossless/``), and the
    images come in that order: the download's. Otherwise (``train/`` and ``test/``, numbered
    within each class) they come class by class, each class in the order of its names.
    """
    files = [(path, label) for label, paths in enumerate(_cifar_class_files(folder)) for path in paths]
    if not files:
        raise DatasetNotFoundError(f"CIFAR-10: the class folders in {folder} hold no images "
                                   f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    indices = {int(p.stem) for p, _ in files if p.stem.isdigit()}
    if len(indices) == len(files):
        files.sort(key=lambda f: int(f[0].stem))
    x = torch.from_numpy(np.stack([_read_cifar_image(p) for p, _ in files]))
    return x.permute(0, 3, 1, 2).contiguous(), torch.tensor([y for _, y in files])  # [N,32,32,3] => [N,3,32,32]


def _warn_if_incomplete(split: str, labels: torch.Tensor, source: str, partial_mark: Path | None):
    """Tell the learner when a CIFAR-10 split is not the full set, unless declared partial."""
    per_class = CIFAR10_SIZES[split] // len(CIFAR10_CLASSES)
    counts = torch.bincount(labels, minlength=len(CIFAR10_CLASSES)).tolist()
    if counts == [per_class] * len(counts):
        return
    spread = (f"{counts[0]} per class" if len(set(counts)) == 1
              else "per class: " + ", ".join(f"{c} {n}" for c, n in zip(CIFAR10_CLASSES, counts)))
    where = f"create the empty file {partial_mark}" if partial_mark else (
        f"create an empty file {PARTIAL_MARK} in the mirror's cifar10-images/ folder")
    warnings.warn(
        f"CIFAR-10 {split} split has {len(labels)} images ({spread}); the full set has "
        f"{CIFAR10_SIZES[split]} ({per_class} per class). Source: {source}. Replace it with a "
        f"complete copy (the cache in {data_root() / 'CIFAR10'} is then rebuilt by itself), or, "
        f"if the copy is partial on purpose, {where}.",
        UserWarning, stacklevel=4,
    )


def cifar10_tensors(train: bool = True, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 as ``(images uint8 [N,3,32,32], labels int64 [N])`` on the CPU (lesson 05).

    From a download these are torchvision's pickles; from a mirror, the one-folder-per-class
    copy, with torchvision's class indices. The mirror's test set comes from ``test-lossless/``
    when present: the original pixels, in the download's order. Its training set (JPEGs, and
    ``test/`` likewise) comes class by class, each class in its original order.
    ``device_loaders(limit=...)`` picks the same images from either order.

    The result is cached in data/CIFAR10/ with a record of its source (the pickles, or the
    mirror folder and its number of images per class); the cache is rebuilt when the source
    that would be used now is a different one.

    A split that is not the full set (50 000 / 10 000 images, a tenth per class) is warned
    about, unless the mirror declares itself partial on purpose with an empty file
    ``$COURSE_DATA_MIRROR/cifar10-images/PARTIAL``.
    """
    split = "train" if train else "test"
    images, labels, _ = _cifar10_split(split, [split] if train else ["test-lossless", "test"], download)
    return images, labels


def cifar10_test_sets(download: bool = True) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every CIFAR-10 test set there is, each as ``(uint8 [N,3,32,32], int64 [N])`` (lesson 07).

    From the mirror: ``{"test-lossless": the original pixels, "test": their JPEG copies}``
    (those of the two folders it holds); from torchvision's pickles: ``{"test": ...}``. The
    first entry is the set :func:`cifar10_tensors` ``(train=False)`` returns. Each is cached
    in data/CIFAR10/ like it.
    """
    images, labels, folder = _cifar10_split("test", ["test-lossless", "test"], download)
    if folder is None:
        return {"test": (images, labels)}
    sets = {folder.name: (images, labels)}
    if folder.name == "test-lossless" and (folder.parent / "test").is_dir():
        jpeg_images, jpeg_labels, _ = _cifar10_split("test", ["test"], download, cache_name="test-jpeg")
        sets["test"] = (jpeg_images, jpeg_labels)
    return sets


def _fingerprint(files) -> str:
    """A hash of the names, sizes and modification times of ``files``: it changes when a file
    is added, removed, moved to another class folder, or rewritten."""
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.parent.name}/{path.name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _missing_pickles(folder: Path) -> list[str]:
    return [name for name in CIFAR10_PICKLES if not (folder / name).is_file()]


def _read_cache(cache: Path) -> tuple[dict | None, str | None]:
    """``(the cache's contents, None)``, or ``(None, why it is unusable)``: unreadable,
    truncated, not written by the course (``weights_only=True`` runs no code from it)."""
    if not cache.is_file():
        return None, None
    try:
        blob = torch.load(cache, weights_only=True)
        images, labels = blob["images"], blob["labels"]
        if not (images.dtype == torch.uint8 and images.shape[1:] == (3, 32, 32)
                and labels.dtype == torch.int64 and labels.shape == images.shape[:1]):
            raise ValueError("it holds tensors of the wrong shape or dtype")
        return blob, None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {clean_message(exc)}"


def _write_cache(cache: Path, contents: dict) -> None:
    """Save the cache atomically; a folder that cannot be written only costs the cache (a warning)."""
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.part")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(cache.parent, cache.name, ".part")
        torch.save(contents, tmp)
        tmp.replace(cache)
    except (OSError, RuntimeError) as exc:  # torch's writer reports a full disk as a RuntimeError
        warnings.warn(f"CIFAR-10: could not write the cache {cache} ({type(exc).__name__}: "
                      f"{clean_message(exc)}); the images were loaded, but will be decoded again next time. "
                      "Free some space, or point COURSE_DATA_ROOT at a folder you can write.",
                      UserWarning, stacklevel=4)
    finally:
        tmp.unlink(missing_ok=True)


def _cifar10_split(split: str, folder_names: list[str], download: bool, cache_name: str | None = None):
    """``(images, labels, mirror folder or None)`` of one CIFAR-10 split: from torchvision's
    pickles when downloaded, else from the first of the mirror's ``folder_names`` that exists,
    else downloaded; cached in data/CIFAR10/<cache_name or split>_uint8.pt.

    The cache records its source and a fingerprint of the source's files (names, sizes, times):
    it serves only while the source that would be used now is the same, with the same files.
    With no source to compare (no pickles, no mirror), it serves when it is complete; an
    incomplete one first lets a download be tried, and then serves with a warning that names it."""
    cache = data_root() / "CIFAR10" / f"{cache_name or split}_uint8.pt"
    train = split == "train"
    pickles = data_root() / "cifar-10-batches-py"
    mirror = data_mirror()
    missing_pickles = _missing_pickles(pickles) if pickles.is_dir() else list(CIFAR10_PICKLES)
    have_pickles = not missing_pickles
    folder = None
    if mirror and not have_pickles:
        base = mirror / "cifar10-images"
        folder = next((base / n for n in folder_names if (base / n).is_dir()), None)
    if have_pickles:
        source = f"torchvision's pickles in {pickles}"
        fingerprint = _fingerprint(pickles / name for name in CIFAR10_PICKLES)
    elif folder is not None:
        class_files = _cifar_class_files(folder)
        source = f"the mirror folder {folder}"
        fingerprint = _fingerprint(path for paths in class_files for path in paths)
    else:
        source = fingerprint = None
    partial_mark = folder.parent / PARTIAL_MARK if folder else None
    blob, unreadable = _read_cache(cache)
    if unreadable:
        warnings.warn(f"CIFAR-10: the cache {cache} is unusable ({unreadable}); it is rebuilt", UserWarning,
                      stacklevel=3)
        cache.unlink(missing_ok=True)
    full = CIFAR10_SIZES[split]
    use_cache = blob is not None and (
        blob.get("fingerprint") == fingerprint if source else len(blob["labels"]) == full)
    stale = blob is not None and source is None and not use_cache  # incomplete, and nothing to rebuild it from
    if use_cache:
        images, labels = blob["images"], blob["labels"]
        source = blob.get("source", "a cache made by an older version of the course")
        partial = partial_mark.is_file() if partial_mark else blob.get("partial", False)
    else:
        if not is_quick():  # (quick mode stays silent: its outputs are compared by the tests)
            print(f"CIFAR-10: {'decoding' if source else 'downloading and decoding'} the {split} images "
                  f"{f'from {source} ' if source else ''}into the cache {cache} (about a minute, once)", flush=True)
        if folder is not None:
            images, labels = _cifar_from_folders(folder)
        else:
            try:
                if not have_pickles and not download:
                    raise FileNotFoundError("not downloaded")
                with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                    ds = datasets.CIFAR10(str(data_root()), train=train, download=download)
                images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
                labels = torch.tensor(ds.targets, dtype=torch.int64)
                source = f"torchvision's pickles in {pickles}"
                fingerprint = _fingerprint(pickles / name for name in CIFAR10_PICKLES)
            except Exception as exc:
                if stale:  # better an incomplete set, said so, than none
                    warnings.warn(
                        f"CIFAR-10: using the cache {cache}, which holds {len(blob['labels'])} of the {full} "
                        f"{split} images; it was made from {blob.get('source', 'an unknown source')}. Nothing "
                        "else is available to rebuild it from (no download, no COURSE_DATA_MIRROR): point "
                        "COURSE_DATA_MIRROR at a complete copy, or delete the cache.", UserWarning, stacklevel=3)
                    return blob["images"], blob["labels"], None
                looked = [pickles] + ([mirror / "cifar10-images"] if mirror else [])
                incomplete = (f" ({pickles} is incomplete, an interrupted download?: it lacks "
                              f"{', '.join(missing_pickles)}; delete it)") if pickles.is_dir() else ""
                raise _not_found(
                    "CIFAR-10", ["cifar-10-batches-py/ (or cifar10-images/<split>/<class>/*.jpg)" + incomplete],
                    looked, _download_error(exc) if download else None,
                    f"unpack cifar-10-python.tar.gz into {data_root()}",
                ) from None
        partial = bool(partial_mark and partial_mark.is_file())
        record = {"source": source, "fingerprint": fingerprint,
                  "counts": torch.bincount(labels, minlength=10).tolist(), "partial": partial}
        _write_cache(cache, {"images": images, "labels": labels, **record})
    if not partial:
        _warn_if_incomplete(split, labels, source, partial_mark)
    return images, labels, folder


# -------------------------------------------------------------------- ants and bees
@functools.lru_cache(maxsize=1)
def _hymenoptera_manifest() -> dict[str, str]:
    """``{"train/ants/0013035.jpg": md5, ...}``: every file of the ants/bees set."""
    lines = HYMENOPTERA_MD5.read_text(encoding="utf-8").splitlines()
    return {path.split("/", 1)[1]: md5 for md5, path in (line.split("  ", 1) for line in lines if line.strip())}


def _hymenoptera_missing(base: Path) -> list[str]:
    """The files of the ants/bees set that ``base`` lacks (all of them when it does not exist)."""
    return [name for name in _hymenoptera_manifest() if not (base / name).is_file()]


def _is_photo(path: str) -> bool:
    """A visible image file: hidden files (``.ipynb_checkpoints`` copies, ``._`` files of macOS) are not."""
    name = os.path.basename(path)
    return not name.startswith(".") and name.lower().endswith(datasets.folder.IMG_EXTENSIONS)


class AntsBees(datasets.ImageFolder):
    """The ants/bees ``ImageFolder`` with its two classes fixed, ``ants`` = 0 and ``bees`` = 1
    (lesson 07): other folders (a hidden ``.ipynb_checkpoints``, which JupyterLab makes) are
    not classes, hidden files are not images, and a photo that does not decode is an error
    that names it."""

    def __init__(self, root, transform=None):
        super().__init__(str(root), transform=transform, loader=load_rgb, is_valid_file=_is_photo)

    def find_classes(self, directory):
        missing = [c for c in HYMENOPTERA_CLASSES if not os.path.isdir(os.path.join(directory, c))]
        if missing:
            raise DatasetNotFoundError(f"ants/bees: {directory} has no class folder {', '.join(missing)}: a "
                                       "half-unzipped copy? Delete it to use the mirror or a download.")
        return list(HYMENOPTERA_CLASSES), {name: i for i, name in enumerate(HYMENOPTERA_CLASSES)}


def _download_hymenoptera(root: Path) -> None:
    """Download the ants/bees zip into ``root`` and unpack it into ``root/hymenoptera_data``,
    checking both: a zip that does not open (a truncated download) is removed and fetched
    again, and every unpacked file must have its md5 (``HYMENOPTERA_MD5``). The files are
    unpacked into a temporary folder first, which replaces an incomplete copy only once checked."""
    from torchvision.datasets.utils import download_url

    zip_path = root / "hymenoptera_data.zip"
    if zip_path.is_file() and not zipfile.is_zipfile(zip_path):
        zip_path.unlink()  # a download cut short: it would never unpack
    part = root / f".{zip_path.name}.{os.getpid()}.part"
    unpacked = root / f".hymenoptera_data.{os.getpid()}.part"
    try:
        with _writing("ants/bees", root):
            root.mkdir(parents=True, exist_ok=True)
        if not zip_path.is_file():
            remove_stale_temporaries(root, zip_path.name, ".part")
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                download_url(HYMENOPTERA_URL, str(root), part.name)  # its errors are the download's
            if not zipfile.is_zipfile(part):
                raise DatasetNotFoundError(f"the download of {HYMENOPTERA_URL} is not a zip file (cut short?)")
            part.replace(zip_path)
        with _writing("ants/bees", unpacked), zipfile.ZipFile(zip_path) as archive:
            archive.extractall(unpacked)
        base = unpacked / "hymenoptera_data"
        wrong = [name for name, md5 in _hymenoptera_manifest().items()
                 if not (base / name).is_file() or _file_md5(base / name) != md5]
        if wrong:
            zip_path.unlink(missing_ok=True)
            raise DatasetNotFoundError(f"ants/bees: {len(wrong)} files of the download are missing or differ from "
                                       f"the published set (e.g. {wrong[0]}); the zip was removed, so the next call "
                                       "downloads it again")
        with _writing("ants/bees", root / "hymenoptera_data"):
            shutil.rmtree(root / "hymenoptera_data", ignore_errors=True)  # an incomplete copy, replaced
            base.replace(root / "hymenoptera_data")
    finally:
        part.unlink(missing_ok=True)
        shutil.rmtree(unpacked, ignore_errors=True)


def hymenoptera(split: str = "train", transform=None, download: bool = True):
    """The ants/bees photos of the transfer-learning tutorial as an :class:`AntsBees` image
    folder, ants = 0 and bees = 1 (lesson 07).

    The copy in data/ is used when it is complete, else the mirror's, else a download (checked
    file by file). An incomplete copy (half unzipped, say) is passed over with a warning that
    names it; when no complete copy exists, an incomplete one that still has both classes is
    used, with that warning."""
    if split not in {"train", "val"}:
        raise ValueError(f"split must be 'train' or 'val', not {split!r}")
    local = data_root() / "hymenoptera_data"
    mirror = data_mirror()
    candidates = [local] + ([mirror / "hymenoptera_data"] if mirror else [])
    missing = {base: _hymenoptera_missing(base) for base in candidates}
    complete = next((base for base in candidates if not missing[base]), None)
    error = None
    if complete is None and download:
        try:
            _download_hymenoptera(data_root())
            complete = local
        except Exception as exc:
            error = _download_error(exc)
    passed_over = [base for base in candidates if base.is_dir() and missing[base] and base != complete]
    usable = complete or next((base for base in passed_over
                               if all((base / split / c).is_dir() for c in HYMENOPTERA_CLASSES)), None)
    for base in passed_over:
        n = len(missing[base])
        what = "uses it anyway: nothing complete is available" if base == usable else "passes it over"
        warnings.warn(f"ants/bees: {base} lacks {n} of the set's {len(_hymenoptera_manifest())} files (e.g. "
                      f"{missing[base][0]}): a half-unzipped copy? The course {what}.", UserWarning, stacklevel=2)
    if usable is not None:
        return AntsBees(usable / split, transform=transform)
    raise _not_found(
        "hymenoptera_data (ants and bees)", [f"hymenoptera_data/{split}/"], candidates, error,
        f"download {HYMENOPTERA_URL} and unzip it into {data_root()}",
    )


# --------------------------------------------------------------- the device-resident path
def dataset_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """A torchvision MNIST-style dataset as ``(uint8 [N,C,H,W], int64 [N])`` tensors (lesson 03)."""
    images = dataset.data
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(images)
    if images.ndim == 3:  # [N,H,W] -> [N,1,H,W]
        images = images.unsqueeze(1)
    return images, torch.as_tensor(dataset.targets, dtype=torch.int64)


def _check_name(name) -> None:
    """Dataset names are case-sensitive, as torchvision spells them: 'MNIST', not 'mnist'."""
    if name not in STATS:
        same = [n for n in STATS if n.lower() == str(name).lower()]
        hint = f" (names are case-sensitive: did you mean {same[0]!r}?)" if same else ""
        raise ValueError(f"unknown dataset {name!r}: use one of {', '.join(map(repr, sorted(STATS)))}{hint}")


def _check_count(value, what: str) -> int:
    """A whole number >= 1 (batch_size, limit), or one clear error naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be a whole number >= 1, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{what} must be >= 1, got {value}")
    return int(value)


def load_tensors(name: str, train: bool = True, download: bool = True):
    """``(images uint8 [N,C,H,W], labels int64 [N])`` of MNIST, FashionMNIST or CIFAR10 (lesson 03)."""
    _check_name(name)
    if name == "CIFAR10":
        return cifar10_tensors(train, download)
    return dataset_tensors(mnist(train, fashion=name == "FashionMNIST", download=download))


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 images -> float32 in [0,1] -> (x - mean) / std per channel, on their device (lesson 03)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {images.dtype}")
    if images.ndim != 4 or images.shape[1] != len(mean):
        raise ValueError(f"expected [N,{len(mean)},H,W] images, got shape {tuple(images.shape)}")
    # No copy when mean/std are already tensors on this device (device_loaders makes them once).
    mean = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255 - mean) / std


def random_crop_flip(images: torch.Tensor, padding: int = 4, flip: bool = True) -> torch.Tensor:
    """Batched augmentation on the device: a random crop after zero-padding, then a
    horizontal flip with probability 1/2, each drawn per image (lesson 06). ``flip=False``
    only shifts: for digits, whose mirror images are not digits (lesson 07)."""
    n, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n, 1), device=images.device)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), device=images.device)
    rows = (dy + torch.arange(h, device=images.device))[:, None, :, None]  # [n,1,h,1]
    cols = (dx + torch.arange(w, device=images.device))[:, None, None, :]  # [n,1,1,w]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    chans = torch.arange(c, device=images.device)[None, :, None, None]
    cropped = padded[batch, chans, rows, cols]
    if not flip:
        return cropped
    mirrored = torch.rand(n, 1, 1, 1, device=images.device) < 0.5
    return torch.where(mirrored, cropped.flip(3), cropped)


class DeviceLoader:
    """Mini-batches of a dataset held as two tensors on one device (lesson 03).

    ``DataLoader`` fetches samples one by one on the CPU; when the whole dataset fits in
    device memory it is much faster to keep it there and batch by index. Iterating yields
    ``(transform(images[idx]), labels[idx])``; ``transform`` runs on the device, batched.

    Under ``torchrun`` (lesson 09) each process gets only its share of every epoch, as
    ``DistributedSampler`` gives it: the epoch's shuffle is the same on every rank (the same
    seed, advanced once per epoch), and rank ``r`` takes every ``world_size``-th sample from
    position ``r``. A shuffled (training) loader first repeats a few samples so that every rank
    gets the same number, and so takes the same number of steps, which DDP needs; an
    unshuffled (evaluation) loader shares the samples exactly, so each one is scored once.
    With a per-rank ``batch_size`` of B/N, the N ranks' t-th batches together are the t-th
    batch of size B of one process. ``shard=False`` gives every rank everything.
    """

    def __init__(self, images, labels, batch_size=256, shuffle=False, transform=None,
                 drop_last=False, device=None, seed=0, shard: bool = True):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        batch_size = _check_count(batch_size, "batch_size")
        device = torch.device(device) if device is not None else images.device
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform = transform
        self.drop_last = drop_last
        self.shard = shard
        self.generator = torch.Generator().manual_seed(seed)  # CPU: works for every device

    @property
    def device(self) -> torch.device:
        return self.images.device

    def _share(self) -> tuple[int, int]:
        """``(world_size, rank)`` of the share this loader yields: ``(1, 0)`` when not sharded."""
        return (world_size(), rank()) if self.shard and distributed() else (1, 0)

    def _samples(self) -> int:
        """How many samples this process gets per epoch."""
        n, (size, me) = len(self.labels), self._share()
        return -(-n // size) if self.shuffle else len(range(me, n, size))

    def __len__(self) -> int:
        n, b = self._samples(), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        n = len(self.labels)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.device, non_blocking=True)
        else:
            order = torch.arange(n, device=self.device)
        size, me = self._share()
        if size > 1:
            if self.shuffle:  # repeat the first samples so that every rank gets as many
                padded = -(-n // size) * size
                order = order.repeat(-(-padded // n))[:padded] if n else order
            order = order[me::size]
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.images[idx]
            yield (self.transform(x) if self.transform else x), self.labels[idx]


def _seeded_subset(labels: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of ``n`` random samples, drawn from the samples in class order (each class in
    its original order): the same images whether the source lists them in the download's order
    or class by class, as the mirror's CIFAR-10 folders do."""
    by_class = torch.argsort(labels, stable=True)
    return by_class[torch.randperm(len(labels), generator=generator)[:n]]


def device_loaders(name: str, device, batch_size: int = 256, augment: bool = False,
                   limit: int | None = None, test_batch_size: int = 1024, seed: int = 0,
                   drop_last: bool = False, val_size: int | None = None):
    """Train and test :class:`DeviceLoader` s for MNIST, FashionMNIST or CIFAR10, normalised
    on the device. ``limit`` keeps ``limit`` training and ``limit // 5`` test images (a seeded
    random subset, for quick mode: the same images whatever order the source stores them in);
    ``augment`` adds random crops and flips to the training batches (MNIST: shifts only).
    ``drop_last=True`` drops
    the last, smaller training batch of each epoch, so that every batch has the same shape
    (what ``torch.compile`` and CUDA graphs like, lesson 07).

    ``val_size=n`` also carves a validation set of ``n`` images out of the training images (a
    seeded random choice, after ``limit``; they are then not trained on) and returns
    ``(train, val, test)``: choose epochs, learning rates and models on ``val``, and score the
    test set once, at the end (lessons 03 and 05-07). The validation batches are not augmented."""
    _check_name(name)
    batch_size = _check_count(batch_size, "batch_size")
    test_batch_size = _check_count(test_batch_size, "test_batch_size")
    limit = None if limit is None else _check_count(limit, "limit")
    mean, std = (torch.tensor(v, device=device) for v in STATS[name])
    val_size = None if val_size is None else _check_count(val_size, "val_size")
    x_train, y_train = load_tensors(name, train=True)
    x_test, y_test = load_tensors(name, train=False)
    g = torch.Generator().manual_seed(seed)
    if limit is not None:
        keep = _seeded_subset(y_train, limit, g)
        x_train, y_train = x_train[keep], y_train[keep]
        keep = _seeded_subset(y_test, max(1, limit // 5), g)
        x_test, y_test = x_test[keep], y_test[keep]
    if val_size is not None:
        if val_size >= len(y_train):
            raise ValueError(f"val_size={val_size} leaves nothing to train on: the training set has "
                             f"{len(y_train)} images")
        order = _seeded_subset(y_train, len(y_train), torch.Generator().manual_seed(seed + 1))
        x_val, y_val = x_train[order[:val_size]], y_train[order[:val_size]]
        x_train, y_train = x_train[order[val_size:]], y_train[order[val_size:]]

    def train_transform(x):
        if augment:  # a mirrored digit is not a digit: MNIST gets shifts of up to 2 pixels only
            x = random_crop_flip(x, padding=2, flip=False) if name == "MNIST" else random_crop_flip(x)
        return normalize(x, mean, std)

    def test_transform(x):
        return normalize(x, mean, std)

    train = DeviceLoader(x_train, y_train, batch_size, shuffle=True, transform=train_transform,
                         drop_last=drop_last, device=device, seed=seed)
    test = DeviceLoader(x_test, y_test, test_batch_size, transform=test_transform, device=device)
    if val_size is None:
        return train, test
    val = DeviceLoader(x_val, y_val, test_batch_size, transform=test_transform, device=device)
    return train, val, test
