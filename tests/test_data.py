import errno
import gzip
import hashlib
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets

from helpers import data


@pytest.fixture(scope="module")
def mirrored_root(tmp_path_factory):
    """A fresh data root that is filled from the mirror once for this module."""
    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_DATA_ROOT", str(root))
        yield root


def _line(message: str, label: str) -> str:
    """The text after ``label`` on the message's line that starts with it (e.g. 'missing:')."""
    lines = [line.strip() for line in message.splitlines() if line.strip().startswith(label)]
    assert len(lines) == 1, f"no single {label!r} line in:\n{message}"
    return lines[0][len(label):].strip()


def _idx_header(*shape: int) -> bytes:
    """The header of an IDX file of unsigned bytes: magic, then one big-endian size per dimension."""
    return bytes([0, 0, 8, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


def _idx(values: np.ndarray) -> bytes:
    """``values`` as an IDX file of unsigned bytes."""
    return _idx_header(*values.shape) + values.astype(np.uint8).tobytes()


def _small_idx_files(n: int = 5) -> dict[str, bytes]:
    """The four MNIST files holding ``n`` well-formed images and labels each (not MNIST's)."""
    images, labels = _idx(np.zeros((n, 28, 28))), _idx(np.arange(n) % 10)
    return {name: images if "idx3" in name else labels for name in data.IDX_FILES}


# ------------------------------------------------------------------ MNIST and FashionMNIST
@pytest.mark.parametrize("fashion", [False, True], ids=["MNIST", "FashionMNIST"])
def test_real_mnist_from_the_mirror(mirror, mirrored_root, fashion):
    """Bug caught: the mirror's MNIST decompressed wrong (sizes, dtype, 0/1 pixels, missing classes), or
    extra files left in raw/."""
    train = data.mnist(train=True, fashion=fashion, download=False)
    test = data.mnist(train=False, fashion=fashion, download=False)
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.data.shape == (60_000, 28, 28) and train.data.dtype == torch.uint8
    assert torch.equal(train.targets.unique(), torch.arange(10))
    assert int(train.data.max()) == 255  # 256 grey levels, not 0/1
    counts = torch.bincount(train.targets, minlength=10)
    assert counts.min() > 5_000  # every digit is well represented
    name = "FashionMNIST" if fashion else "MNIST"
    assert sorted(p.name for p in (mirrored_root / name / "raw").iterdir()) == sorted(data.IDX_FILES)


def test_load_tensors_matches_the_torchvision_dataset(mirror, mirrored_root):
    """Bug caught: load_tensors' images or labels not those of torchvision's dataset (a lost channel axis,
    shifted labels)."""
    ds = data.mnist(train=False)
    images, labels = data.load_tensors("MNIST", train=False)
    assert images.shape == (10_000, 1, 28, 28) and labels.dtype == torch.int64
    image, label = ds[123]  # a PIL image and an int
    assert torch.equal(images[123, 0], torch.from_numpy(np.array(image)))
    assert labels[123].item() == label
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_tensors("ImageNet")


def test_missing_mnist_says_what_and_where_and_how(empty_data_root):
    """Bug caught: a missing dataset reported without the files, the folders looked in, the mirror setting
    or the fixes."""
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist(download=False)
    message = str(info.value)
    assert message.startswith("MNIST is not available")
    assert _line(message, "missing:") == ", ".join(data.IDX_FILES)
    assert _line(message, "looked in:") == str(empty_data_root / "MNIST" / "raw")
    assert _line(message, "COURSE_DATA_MIRROR:") == "not set"
    assert _line(message, "download:") == "not attempted (download=False)"
    assert "How to fix" in message


def _accept_small_idx_files(monkeypatch, n: int = 5) -> None:
    """Make the md5 check take :func:`_small_idx_files` for MNIST's own files."""
    fake = {name: hashlib.md5(content).hexdigest() for name, content in _small_idx_files(n).items()}
    monkeypatch.setitem(data.IDX_MD5, "MNIST", fake)


def test_missing_mnist_lists_only_the_files_that_are_missing(empty_data_root, monkeypatch):
    """Bug caught: the error listing files that are already there."""
    raw = empty_data_root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _accept_small_idx_files(monkeypatch)
    for name, content in _small_idx_files().items():
        if name.startswith("train"):
            (raw / name).write_bytes(content)
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist(download=False)
    assert _line(str(info.value), "missing:") == "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"


def test_failed_download_is_fast_and_explained(empty_data_root, monkeypatch):
    """Bug caught: a failed download's cause (on torchvision's later lines) dropped from the message."""
    # A port nothing listens on: the download fails at once, like an offline machine.
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    start = time.monotonic()
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist(download=True)
    assert time.monotonic() - start < 10
    failure = str(info.value).split("download failed:")[1].split("How to fix")[0]
    # torchvision names the file on the first line and the cause on the next ones: keep both.
    assert "Error downloading train-images-idx3-ubyte.gz" in failure
    assert "Tried http://127.0.0.1:9/" in failure


def test_a_stalled_download_gives_up(empty_data_root, monkeypatch, run_within):
    """Bug caught: a download without a socket timeout, which hangs the notebook forever."""
    server = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    monkeypatch.setattr(datasets.MNIST, "mirrors", [f"http://127.0.0.1:{server.getsockname()[1]}/"])
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT_S", 0.5)
    with server, pytest.raises(data.DatasetNotFoundError, match="timed out"):
        run_within(60, lambda: data.mnist(download=True))  # without the timeout: blocked for ever


def test_an_incomplete_mirror_is_reported(empty_data_root, tmp_path, monkeypatch):
    """Bug caught: a mirror holding only some of the four files used (or reported) as complete."""
    partial = tmp_path / "mirror" / "MNIST" / "raw"
    partial.mkdir(parents=True)
    (partial / "train-images-idx3-ubyte.gz").write_bytes(b"")
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist(download=False)
    message = str(info.value)
    assert _line(message, "looked in:") == f"{empty_data_root / 'MNIST' / 'raw'}; {partial}"
    assert _line(message, "missing:") == ", ".join(data.IDX_FILES)


def test_a_corrupt_mirror_file_is_reported_not_half_copied(empty_data_root, tmp_path, monkeypatch):
    """Bug caught: a corrupt mirror .gz half-copied into data/, poisoning later loads."""
    mirror = tmp_path / "mirror" / "MNIST" / "raw"
    mirror.mkdir(parents=True)
    for name in data.IDX_FILES:
        (mirror / (name + ".gz")).write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(data.DatasetNotFoundError, match="unreadable") as info:
        data.mnist(download=False)
    assert str(mirror / "train-images-idx3-ubyte.gz") in str(info.value)
    raw = empty_data_root / "MNIST" / "raw"
    assert list(raw.iterdir()) == []  # no partial file left to be mistaken for data


def test_a_truncated_but_valid_gzip_in_the_mirror_never_lands_in_data(empty_data_root, tmp_path, monkeypatch):
    """Bug caught: a truncated .gz (EOFError mid-stream) copied into data/, or its error not blamed on the
    mirror file."""
    mirror = tmp_path / "mirror" / "MNIST" / "raw"
    mirror.mkdir(parents=True)
    for name, content in _small_idx_files(10).items():
        (mirror / (name + ".gz")).write_bytes(gzip.compress(content))
    whole = _idx(np.zeros((10, 28, 28)))
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(whole[:len(whole) - 5 * 784]))
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist(download=False)
    message = str(info.value)
    assert f"the mirror's file {mirror / 'train-images-idx3-ubyte.gz'} is damaged" in message
    assert "header announces 10 x 28 x 28 values (7856 bytes in all), but the file holds 3936 bytes" in message
    raw = empty_data_root / "MNIST" / "raw"
    assert list(raw.iterdir()) == []  # refused before it lands: no file, no .part


@pytest.mark.parametrize("suffix", [".gz", ""], ids=["gz", "uncompressed"])
def test_a_well_formed_mirror_file_that_is_not_mnist_is_refused_by_its_md5(empty_data_root, tmp_path,
                                                                           monkeypatch, suffix):
    """Bug caught: the mirror's md5 not checked, so a well-formed IDX file that is not MNIST loads as
    MNIST."""
    mirror = tmp_path / "mirror" / "MNIST" / "raw"
    mirror.mkdir(parents=True)
    for name, content in _small_idx_files().items():
        (mirror / (name + suffix)).write_bytes(gzip.compress(content) if suffix else content)
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist(download=False)
    message = str(info.value)
    assert f"{mirror / ('train-images-idx3-ubyte' + suffix)} is damaged" in message
    assert f"are not MNIST's train-images-idx3-ubyte (md5 {data.IDX_MD5['MNIST']['train-images-idx3-ubyte']})" \
        in message
    assert not (empty_data_root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()


@pytest.mark.parametrize("damage", ["truncated", "still gzipped"])
def test_a_damaged_file_already_in_data_is_named_with_the_command_that_removes_it(
        mirror, empty_data_root, monkeypatch, damage):
    """Bug caught: a truncated or still-gzipped file in data/ loaded (or crashing torchvision) instead of
    named with its rm command."""
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))  # a good mirror does not hide it
    raw = empty_data_root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    bad = raw / "train-images-idx3-ubyte"
    header = _idx_header(60_000, 28, 28)
    if damage == "truncated":  # what an older version copied from a truncated but valid .gz
        bad.write_bytes(header + bytes(999_984 - 16))
        problem = "header announces 60000 x 28 x 28 values (47040016 bytes in all), but the file holds 999984 bytes"
    else:
        bad.write_bytes(gzip.compress(header))
        problem = "does not start with the IDX magic number 0x00000803"
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist(download=False)
    message = str(info.value)
    assert f"{bad} is not a good copy" in message and problem in message
    assert message.splitlines()[-1].strip() == f"rm {shlex.quote(str(bad))}"


# --------------------------------------------------------------------------- CIFAR-10
def test_real_cifar10_test_set_from_the_mirror(mirror, mirrored_root):
    """Bug caught: the mirror's CIFAR-10 test set in the wrong order, with wrong pixels, or not served from
    its cache."""
    images, labels = data.cifar10_tensors(train=False, download=False)
    assert images.shape == (10_000, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(torch.bincount(labels), torch.full((10,), 1_000))
    assert labels[:4].tolist() == [3, 8, 8, 0]  # test-lossless/ comes in the download's order
    # The published per-channel means of the original CIFAR-10 test images (0..255).
    means = images.float().mean(dim=(0, 2, 3))
    assert torch.allclose(means, torch.tensor([126.0, 123.7, 114.9]), atol=1.0), means
    assert (mirrored_root / "CIFAR10" / "test_uint8.pt").is_file()
    again = data.cifar10_tensors(train=False, download=False)  # from the cache
    assert torch.equal(again[0], images) and torch.equal(again[1], labels)


def _fake_cifar(mirror, split: str = "train", per_class: int = 3, number=lambda label, i: i,
                suffix: str = ".png"):
    """A CIFAR-10 mirror ``mirror/cifar10-images/<split>/<class>/<number>.png``: each image's red
    channel holds its label, its green channel its number (which names the file)."""
    for label, cls in enumerate(data.CIFAR10_CLASSES):
        folder = mirror / "cifar10-images" / split / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.zeros((32, 32, 3), dtype=np.uint8)
            pixels[..., 0], pixels[..., 1] = label, number(label, i)
            Image.fromarray(pixels).save(folder / f"{number(label, i)}{suffix}")
    return mirror / "cifar10-images"


@pytest.fixture
def cifar_mirror(empty_data_root, tmp_path, monkeypatch):
    """``make(name, **fake_cifar_args)``: a small fake CIFAR-10 mirror that COURSE_DATA_MIRROR
    then points at, over an empty data root."""
    def make(name: str = "mirror", **kwargs):
        images = _fake_cifar(tmp_path / name, **kwargs)
        monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / name))
        return images
    return make


def test_the_cifar_cache_is_rebuilt_when_its_source_changes(cifar_mirror, monkeypatch):
    """Bug caught: a stale CIFAR cache served after the mirror changed or grew, or an incomplete one served
    silently."""
    (cifar_mirror("small", per_class=3) / "PARTIAL").touch()
    assert len(data.cifar10_tensors(download=False)[1]) == 30
    (cifar_mirror("full", per_class=5) / "PARTIAL").touch()  # another mirror
    images, labels = data.cifar10_tensors(download=False)
    assert torch.equal(torch.bincount(labels), torch.full((10,), 5))
    assert torch.equal(images[:, 0, 0, 0], labels.to(torch.uint8))
    cifar_mirror("full", per_class=6)  # the same mirror, grown
    assert len(data.cifar10_tensors(download=False)[1]) == 60
    # No source at all: data/'s cache is the dataset, but an incomplete one serves only with a
    # warning that names it and what made it.
    monkeypatch.delenv("COURSE_DATA_MIRROR")
    with pytest.warns(UserWarning, match=r"using the cache .*train_uint8\.pt, which holds 60 of the 50000 "
                                         r"train images; it was made from the mirror folder .*full"):
        assert len(data.cifar10_tensors(download=False)[1]) == 60


def test_a_cache_from_an_older_version_is_rebuilt(cifar_mirror, empty_data_root):
    """Bug caught: a cache without a record of its source trusted as the current data."""
    (cifar_mirror(per_class=2) / "PARTIAL").touch()
    cache = empty_data_root / "CIFAR10" / "train_uint8.pt"
    cache.parent.mkdir(parents=True)
    torch.save({"images": torch.zeros(30, 3, 32, 32, dtype=torch.uint8),
                "labels": torch.arange(30) % 10}, cache)  # no record of its source
    assert len(data.cifar10_tensors(download=False)[1]) == 20


def test_an_incomplete_cifar_split_is_told_unless_declared_partial(cifar_mirror):
    """Bug caught: a CIFAR split smaller than the full set used without a warning, or a PARTIAL mark not
    honoured."""
    images = cifar_mirror(split="test", per_class=2)
    full = r"the full set has 10000 \(1000 per class\)"
    with pytest.warns(UserWarning, match=rf"CIFAR-10 test split has 20 images \(2 per class\); {full}") as caught:
        data.cifar10_tensors(train=False, download=False)
    assert str(images / "PARTIAL") in str(caught[0].message)
    with pytest.warns(UserWarning, match="20 images"):
        data.cifar10_tensors(train=False, download=False)  # the cache is told about too
    (images / "test" / "cat" / "1.png").unlink()
    with pytest.warns(UserWarning, match=r"19 images \(per class: airplane 2, automobile 2, bird 2, cat 1, deer 2"):
        data.cifar10_tensors(train=False, download=False)
    (images / "PARTIAL").touch()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(data.cifar10_tensors(train=False, download=False)[1]) == 19


def test_cifar_images_numbered_across_the_split_come_in_that_order(cifar_mirror):
    """Bug caught: test-lossless/ images not in the download's order (their numbers), or separated from
    their labels."""
    # test-lossless/: each name is the image's index in the original test batch, classes mixed
    images = cifar_mirror(split="test-lossless", per_class=3, number=lambda label, i: 10 * i + (label * 7) % 10)
    (images / "PARTIAL").touch()
    x, labels = data.cifar10_tensors(train=False, download=False)
    assert x[:, 1, 0, 0].tolist() == list(range(30))  # the original order
    assert torch.equal(x[:, 0, 0, 0], labels.to(torch.uint8))  # each image keeps its label
    assert labels[:4].tolist() == [0, 3, 6, 9]


def test_cifar_images_numbered_within_each_class_come_class_by_class(tmp_path):
    """Bug caught: images sorted by name (10 before 2) instead of by number within each class."""
    # train/ and test/: names count within each class (unpadded here: numeric, not name order)
    _fake_cifar(tmp_path, "train", per_class=3, number=lambda label, i: [2, 10, 11][i])
    x, labels = data._cifar_from_folders(tmp_path / "cifar10-images" / "train")
    assert torch.equal(labels, torch.arange(10).repeat_interleave(3))
    assert x[:, 1, 0, 0].tolist() == [2, 10, 11] * 10


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_cifar_image_is_named_with_the_fix(cifar_mirror, damage):
    """Bug caught: an image that does not decode raising PIL's own error, which names no file."""
    images = cifar_mirror(per_class=1, suffix=".jpg")
    bad = images / "train" / "cat" / "0.jpg"
    content = bad.read_bytes()
    bad.write_bytes(b"not a jpeg" if damage == "garbage" else content[:len(content) // 2])
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.cifar10_tensors(download=False)
    assert str(info.value).startswith(f"CIFAR-10: cannot decode {bad} (")
    assert "replace it with a good copy" in str(info.value)


def test_a_missing_cifar_class_folder_is_named_with_the_fix(cifar_mirror):
    """Bug caught: a missing class folder shifting every later label instead of being named."""
    images = cifar_mirror(per_class=1)
    for path in (images / "train" / "dog").iterdir():
        path.unlink()
    (images / "train" / "dog").rmdir()
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.cifar10_tensors(download=False)
    assert str(info.value).startswith(f"CIFAR-10: class folder missing: {images / 'train' / 'dog'}.")
    assert "Copy the missing folders" in str(info.value)


def test_cifar_folders_must_hold_32x32_images(tmp_path):
    """Bug caught: an image of the wrong size stacked (or crashing np.stack) instead of a clear error."""
    for cls in data.CIFAR10_CLASSES:
        (tmp_path / cls).mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "cat" / "0001.png")
    with pytest.raises(ValueError, match="3x32x32"):
        data._cifar_from_folders(tmp_path)


def test_missing_cifar10_is_explained(empty_data_root):
    """Bug caught: a missing CIFAR-10 raising torchvision's bare error instead of DatasetNotFoundError."""
    with pytest.raises(data.DatasetNotFoundError, match="CIFAR-10 is not available"):
        data.cifar10_tensors(download=False)


# ------------------------------------------------------------------------ ants and bees
def test_real_hymenoptera_from_the_mirror(mirror, mirrored_root):
    """Bug caught: the ants/bees split sizes or class names wrong, or an unknown split accepted."""
    train, val = data.hymenoptera("train", download=False), data.hymenoptera("val", download=False)
    assert (len(train), len(val)) == (244, 153)  # the tutorial's sizes (the .gif is skipped)
    assert train.classes == ["ants", "bees"]
    with pytest.raises(ValueError, match="split"):
        data.hymenoptera("test")


def test_missing_hymenoptera_is_explained(empty_data_root):
    """Bug caught: a missing ants/bees set raising ImageFolder's error instead of naming what is missing."""
    with pytest.raises(data.DatasetNotFoundError, match="hymenoptera_data/train/"):
        data.hymenoptera("train", download=False)


# ------------------------------------------------------------------------ DeviceLoader
def test_device_loader_visits_every_sample_once_per_epoch():
    """Bug caught: a DeviceLoader epoch that drops, repeats or unpairs samples, the same order every epoch,
    or a seed ignored."""
    x = torch.arange(10).view(10, 1, 1, 1).to(torch.uint8)
    y = torch.arange(10)
    loader = data.DeviceLoader(x, y, batch_size=4, shuffle=True, seed=3)
    assert len(loader) == 3
    epochs = []
    for _ in range(2):
        batches = list(loader)
        assert [len(b[1]) for b in batches] == [4, 4, 2]
        seen = torch.cat([b[1] for b in batches])
        assert torch.equal(seen.sort().values, y)
        assert all(torch.equal(b[0].flatten().long(), b[1]) for b in batches)  # pairs stay together
        epochs.append(seen)
    assert not torch.equal(epochs[0], epochs[1])  # reshuffled each epoch
    again = data.DeviceLoader(x, y, batch_size=4, shuffle=True, seed=3)
    assert torch.equal(torch.cat([b[1] for b in again]), epochs[0])  # and reproducible


def test_device_loader_drop_last_transform_and_order():
    """Bug caught: drop_last keeping the short batch, the transform not applied, or an unshuffled loader
    out of order."""
    x, y = torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10)
    loader = data.DeviceLoader(x, y, batch_size=4, drop_last=True, transform=lambda b: b.float() + 1)
    batches = list(loader)
    assert len(loader) == len(batches) == 2
    assert torch.equal(torch.cat([b[1] for b in batches]), torch.arange(8))
    assert batches[0][0].dtype == torch.float32 and batches[0][0].min() == 1


def test_device_loader_rejects_bad_input():
    """Bug caught: images and labels of different lengths, or a batch_size of 0, 2.5 or '32', accepted."""
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        data.DeviceLoader(torch.zeros(10, 1), torch.zeros(9))
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        data.DeviceLoader(torch.zeros(10, 1), torch.zeros(10), batch_size=0)
    for bad in (2.5, None, "32"):
        with pytest.raises(TypeError, match=rf"batch_size must be a whole number >= 1, got {re.escape(repr(bad))}"):
            data.DeviceLoader(torch.zeros(10, 1), torch.zeros(10), batch_size=bad)
    assert len(data.DeviceLoader(torch.zeros(10, 1), torch.zeros(10), batch_size=np.int64(5))) == 2


@pytest.fixture
def fake_cifar_tensors(monkeypatch):
    """Make load_tensors return small random 'CIFAR10' tensors (64 train, 32 test) whose
    labels are the images' indices, so a batch can be matched with its images."""
    g = torch.Generator().manual_seed(0)
    fake = {train: (torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(n))
            for train, n in [(True, 64), (False, 32)]}
    monkeypatch.setattr(data, "load_tensors", lambda name, train=True, download=True: fake[train])
    return fake


@pytest.mark.parametrize("augment", [False, True])
def test_device_loaders_shuffle_and_augment_only_the_training_batches(fake_cifar_tensors, augment):
    """Bug caught: test batches augmented or shuffled, or training batches not shuffled or augmented."""
    train, test = data.device_loaders("CIFAR10", "cpu", batch_size=16, augment=augment, test_batch_size=8)
    mean, std = data.STATS["CIFAR10"]
    x_test, y_test = fake_cifar_tensors[False]
    batches = list(test)
    assert torch.equal(torch.cat([y for _, y in batches]), y_test)  # in order
    assert torch.equal(torch.cat([x for x, _ in batches]), data.normalize(x_test, mean, std))  # never augmented

    x_train, y_train = fake_cifar_tensors[True]
    batches = list(train)
    seen = torch.cat([y for _, y in batches])
    assert not torch.equal(seen, y_train) and torch.equal(seen.sort().values, y_train)  # shuffled
    unchanged = (torch.cat([x for x, _ in batches]) == data.normalize(x_train[seen], mean, std)).flatten(1).all(1)
    if augment:
        assert unchanged.sum() < len(seen) / 4  # padding 4: 80 of 81 crops are shifted
    else:
        assert unchanged.all()


def test_device_loaders_seed_sets_the_shuffle(fake_cifar_tensors):
    """Bug caught: device_loaders' seed not reaching the training loader's shuffle."""
    def first_epoch(seed):
        train, _ = data.device_loaders("CIFAR10", "cpu", batch_size=16, seed=seed)
        return torch.cat([y for _, y in train])

    assert torch.equal(first_epoch(1), first_epoch(1)) and not torch.equal(first_epoch(0), first_epoch(1))


def test_a_seeded_subset_does_not_depend_on_the_source_order(monkeypatch):
    """Bug caught: limit= picking other images from the mirror (class by class) than from the download, or
    test limit not limit // 5."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (300,), generator=g)  # the download's order: classes mixed
    images = torch.arange(300).view(300, 1, 1, 1).expand(300, 3, 1, 1).to(torch.uint8)
    by_class = torch.argsort(labels, stable=True)  # the mirror's folders: class by class
    picked = []
    for x, y in [(images, labels), (images[by_class], labels[by_class])]:
        monkeypatch.setattr(data, "load_tensors", lambda name, train=True, download=True, x=x, y=y: (x, y))
        train, test = data.device_loaders("CIFAR10", "cpu", limit=50)
        assert (len(train.labels), len(test.labels)) == (50, 10)
        picked.append((train.images, train.labels, test.images, test.labels))
    for a, b in zip(*picked):
        assert torch.equal(a, b)


def test_device_loaders_name_the_bad_argument(fake_cifar_tensors):
    """Bug caught: a wrong-case dataset name or a bad batch_size, test_batch_size or limit failing without
    naming the argument."""
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist': use one of 'CIFAR10', 'FashionMNIST', 'MNIST'"
                                         r" \(names are case-sensitive: did you mean 'MNIST'\?\)"):
        data.device_loaders("mnist", "cpu")
    with pytest.raises(ValueError, match=r"unknown dataset 'ImageNet': use one of .*'MNIST'$"):
        data.device_loaders("ImageNet", "cpu")
    with pytest.raises(TypeError, match=r"^batch_size must be a whole number >= 1, got 2.5 \(float\)"):
        data.device_loaders("CIFAR10", "cpu", batch_size=2.5)
    with pytest.raises(TypeError, match=r"^test_batch_size must be a whole number >= 1, got None"):
        data.device_loaders("CIFAR10", "cpu", test_batch_size=None)
    with pytest.raises(ValueError, match=r"^limit must be >= 1, got 0"):
        data.device_loaders("CIFAR10", "cpu", limit=0)


def test_normalize_scales_then_standardises():
    """Bug caught: normalize dividing by 256, swapping mean and std, or accepting float or
    mismatched-channel images."""
    images = torch.tensor([[0, 0], [255, 255]], dtype=torch.uint8).view(2, 2, 1, 1)  # two channels
    out = data.normalize(images, (0.2, 0.6), (0.4, 0.8))  # (x / 255 - mean) / std, per channel
    assert out.shape == images.shape and out.dtype == torch.float32
    assert torch.allclose(out[:, 0].flatten(), torch.tensor([-0.5, 2.0]))
    assert torch.allclose(out[:, 1].flatten(), torch.tensor([-0.75, 0.5]))
    with pytest.raises(TypeError, match="uint8"):
        data.normalize(images.float(), (0.5,), (0.5,))
    with pytest.raises(ValueError, match=r"\[N,3,H,W\]"):
        data.normalize(images, (0.5, 0.5, 0.5), (1, 1, 1))


def test_random_crop_flip_takes_shifted_or_mirrored_crops():
    """Bug caught: crops that are not shifted, flips vertical instead of horizontal, or one shift for the
    whole batch."""
    torch.manual_seed(0)
    images = torch.randint(1, 256, (64, 3, 8, 8), dtype=torch.uint8)
    out = data.random_crop_flip(images, padding=2)
    assert out.shape == images.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(images, (2,) * 4)
    drawn = []  # (row offset, column offset, flipped) of each output image
    for i in range(len(images)):
        found = [(r, c, flip) for r in range(5) for c in range(5) for flip in (False, True)
                 if torch.equal(out[i], padded[i, :, r:r + 8, c:c + 8].flip(2) if flip else
                                padded[i, :, r:r + 8, c:c + 8])]
        assert len(found) == 1, f"image {i} is not one shifted, maybe mirrored, crop"
        drawn += found
    flips = sum(flip for _, _, flip in drawn)
    assert 10 < flips < 54  # about half are flipped
    shifted = sum((r, c) != (2, 2) for r, c, _ in drawn)
    assert shifted > 48  # 24 of the 25 offsets are a shift
    assert len({(r, c) for r, c, _ in drawn}) > 10  # drawn per image


def test_device_loaders_normalise_a_seeded_subset(mirror):
    """Bug caught: MNIST's statistics wrong (the batches not near mean 0, std 1), or the subset not seeded."""
    train, test = data.device_loaders("MNIST", "cpu", batch_size=500, limit=2_000)
    assert (len(train.labels), len(test.labels)) == (2_000, 400)
    x, y = next(iter(train))
    assert x.shape == (500, 1, 28, 28) and x.dtype == torch.float32
    assert abs(float(x.mean())) < 0.15 and abs(float(x.std()) - 1) < 0.15
    again, _ = data.device_loaders("MNIST", "cpu", batch_size=500, limit=2_000)
    assert torch.equal(again.labels, train.labels)


def test_random_crop_flip_without_flip_only_shifts():
    """Bug caught: flip=False still mirroring images, or the default not flipping."""
    torch.manual_seed(0)
    images = torch.randint(1, 256, (64, 1, 8, 8), dtype=torch.uint8)
    assert torch.equal(data.random_crop_flip(images, padding=0, flip=False), images)  # nothing mirrored
    mirrored = data.random_crop_flip(images, padding=0)  # the default still flips about half
    assert 10 < sum(not torch.equal(a, b) for a, b in zip(mirrored, images)) < 54


def test_device_loaders_augment_mnist_with_shifts_only(mirror, monkeypatch):
    """Bug caught: MNIST digits mirrored by augment=True (a mirrored digit is not a digit)."""
    calls = []

    def spy(images, padding=4, flip=True):
        calls.append((padding, flip))
        return images

    monkeypatch.setattr(data, "random_crop_flip", spy)
    for name in ("MNIST", "FashionMNIST"):
        train, _ = data.device_loaders(name, "cpu", batch_size=100, limit=100, augment=True)
        next(iter(train))
    assert calls == [(2, False), (4, True)]  # a mirrored digit is not a digit; a mirrored shoe is a shoe


def test_device_loaders_drop_last_keeps_every_training_batch_full(mirror):
    """Bug caught: drop_last not passed to the training loader, or applied to the test set."""
    kept, _ = data.device_loaders("MNIST", "cpu", batch_size=300, limit=1_000, drop_last=True)
    assert len(kept) == 3 and [len(y) for _, y in kept] == [300, 300, 300]
    whole, test = data.device_loaders("MNIST", "cpu", batch_size=300, limit=1_000)
    assert len(whole) == 4 and [len(y) for _, y in whole] == [300, 300, 300, 100]
    assert not test.drop_last  # the test set is always scored whole


def test_cifar10_test_sets_gives_both_mirror_test_folders(cifar_mirror, empty_data_root):
    """Bug caught: the JPEG test set cached under the lossless set's name, so the two swap or overwrite
    each other."""
    images = cifar_mirror(split="test-lossless", per_class=2, number=lambda label, i: 10 * i + label)
    _fake_cifar(images.parent, "test", per_class=3, suffix=".jpg")
    (images / "PARTIAL").touch()
    sets = data.cifar10_test_sets(download=False)
    assert list(sets) == ["test-lossless", "test"]
    lossless, jpeg = sets["test-lossless"], sets["test"]
    assert len(lossless[1]) == 20 and len(jpeg[1]) == 30  # each from its own folder
    assert lossless[0][:, 1, 0, 0].tolist() == list(range(20))  # in the download's order, as cifar10_tensors
    assert torch.equal(lossless[0], data.cifar10_tensors(train=False, download=False)[0])
    assert jpeg[0].dtype == torch.uint8 and jpeg[0].shape == (30, 3, 32, 32) and jpeg[1].dtype == torch.int64
    assert {p.name for p in (empty_data_root / "CIFAR10").iterdir()} == {"test_uint8.pt", "test-jpeg_uint8.pt"}
    again = data.cifar10_test_sets(download=False)  # from the two caches, not swapped
    assert len(again["test-lossless"][1]) == 20 and len(again["test"][1]) == 30


def test_cifar10_test_sets_with_one_test_folder_or_the_pickles(cifar_mirror, empty_data_root, monkeypatch):
    """Bug caught: cifar10_test_sets failing with one mirror folder or with torchvision's pickles only."""
    (cifar_mirror(split="test", per_class=2) / "PARTIAL").touch()
    sets = data.cifar10_test_sets(download=False)
    assert list(sets) == ["test"] and len(sets["test"][1]) == 20
    pickles = empty_data_root / "cifar-10-batches-py"  # a download: torchvision's pickles only
    pickles.mkdir()
    for name in data.CIFAR10_PICKLES:
        (pickles / name).touch()

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            self.data = np.zeros((5, 32, 32, 3), dtype=np.uint8)
            self.targets = [0, 1, 2, 3, 4]

    monkeypatch.setattr(datasets, "CIFAR10", FakeCIFAR10)
    with pytest.warns(UserWarning, match="5 images"):
        sets = data.cifar10_test_sets(download=False)
    assert list(sets) == ["test"] and sets["test"][1].tolist() == [0, 1, 2, 3, 4]


# ------------------------------------------------------------- data under faults (round two)
def test_fashion_mnist_files_put_by_hand_into_mnist_are_refused(mirror, empty_data_root):
    """Bug caught: files already in data/ got the header check but not the md5 check, so
    Fashion-MNIST's well-formed files loaded as MNIST."""
    raw = empty_data_root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in data.IDX_FILES:
        (raw / name).write_bytes(gzip.decompress((mirror / "FashionMNIST" / "raw" / f"{name}.gz").read_bytes()))
    with pytest.raises(data.DatasetNotFoundError, match=r"are FashionMNIST's train-images-idx3-ubyte, not MNIST's"):
        data.mnist(download=False)


def test_a_full_disk_while_copying_mnist_is_not_blamed_on_the_mirror(mirror, empty_data_root, monkeypatch):
    """Bug caught: ENOSPC writing data/ reported as "the mirror's file is damaged"."""
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    real_open = open

    def full_disk(file, mode="r", *args, **kwargs):
        if str(file).endswith(".part") and "w" in mode:
            handle = real_open(file, mode, *args, **kwargs)
            handle.write = lambda chunk: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))
            return handle
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full_disk)
    with pytest.raises(data.DataWriteError) as info:
        data.mnist(download=False)
    message = str(info.value)
    assert "No space left on device" in message and "free some space" in message
    assert "damaged" not in message and "mirror" not in message
    assert list((empty_data_root / "MNIST" / "raw").iterdir()) == []  # no .part left behind


def test_copying_from_the_mirror_removes_the_part_files_of_killed_copies(mirror, empty_data_root, monkeypatch):
    """Bug caught: the .part file of a killed copy left in data/ for ever."""
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    raw = empty_data_root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    stale = raw / f".train-images-idx3-ubyte.{dead.pid}.part"
    stale.write_bytes(b"x" * 100)
    data.mnist(download=False)
    assert sorted(p.name for p in raw.iterdir()) == sorted(data.IDX_FILES)


def test_a_partial_cifar_cache_is_not_served_silently_without_a_source(cifar_mirror, monkeypatch):
    """Bug caught: with COURSE_DATA_MIRROR unset, any cache was accepted and no download tried."""
    (cifar_mirror(per_class=3) / "PARTIAL").touch()
    data.cifar10_tensors(download=False)  # the cache: 30 images, from a mirror marked partial
    monkeypatch.delenv("COURSE_DATA_MIRROR")
    tried = []

    class Offline:
        def __init__(self, root, train, download):
            tried.append(download)
            raise RuntimeError("offline")

    monkeypatch.setattr(datasets, "CIFAR10", Offline)
    with pytest.warns(UserWarning, match=r"using the cache .*train_uint8\.pt, which holds 30 of the 50000 train "
                                         r"images; it was made from the mirror folder .*mirror"):
        assert len(data.cifar10_tensors(download=True)[1]) == 30
    assert tried == [True]  # a download was tried first


def test_a_complete_cifar_cache_serves_without_a_source(cifar_mirror, monkeypatch, recwarn):
    """Bug caught: a complete cache thrown away (and a download tried) when no mirror is set."""
    monkeypatch.setitem(data.CIFAR10_SIZES, "train", 20)  # 2 per class is "complete" here
    cifar_mirror(per_class=2)
    data.cifar10_tensors(download=False)
    monkeypatch.delenv("COURSE_DATA_MIRROR")
    monkeypatch.setattr(datasets, "CIFAR10", lambda *a, **k: pytest.fail("no download for a complete cache"))
    assert len(data.cifar10_tensors(download=True)[1]) == 20
    assert [str(w.message) for w in recwarn] == []


def test_the_cifar_cache_follows_the_files_not_only_their_counts(cifar_mirror):
    """Bug caught: the cache keyed on the source path and the counts per class only, so
    swapping two classes' files served stale labels."""
    images = cifar_mirror(per_class=2)
    (images / "PARTIAL").touch()
    before = data.cifar10_tensors(download=False)[0]
    cat, dog = images / "train" / "cat", images / "train" / "dog"
    (images / "train" / "tmp").mkdir()
    for name in ("0.png", "1.png"):  # swap the cats and the dogs, file for file
        (cat / name).rename(images / "train" / "tmp" / name)
        (dog / name).rename(cat / name)
        (images / "train" / "tmp" / name).rename(dog / name)
    (images / "train" / "tmp").rmdir()
    after, labels = data.cifar10_tensors(download=False)
    assert not torch.equal(before, after)
    assert torch.equal(after[:, 0, 0, 0], labels.to(torch.uint8)[[i for i in range(20)]]
                       .where(~torch.isin(labels, torch.tensor([3, 5])), 8 - labels.to(torch.uint8)))


@pytest.mark.parametrize("damage", ["truncated", "not the course's"])
def test_an_unusable_cifar_cache_is_rebuilt_and_runs_no_code(cifar_mirror, empty_data_root, damage, tmp_path):
    """Bug caught: a truncated cache gave "OSError: [Errno 22] Invalid argument" on every call, a
    foreign one a raw UnpicklingError."""
    (cifar_mirror(per_class=1) / "PARTIAL").touch()
    data.cifar10_tensors(download=False)
    cache = empty_data_root / "CIFAR10" / "train_uint8.pt"
    marker = tmp_path / "code-ran"
    if damage == "truncated":
        cache.write_bytes(cache.read_bytes()[:200])
    else:
        torch.save({"images": _Payload(marker)}, cache)
    with pytest.warns(UserWarning, match=rf"the cache {re.escape(str(cache))} is unusable .*; it is rebuilt"):
        images, labels = data.cifar10_tensors(download=False)
    assert len(labels) == 10 and not marker.exists()
    assert data.cifar10_tensors(download=False)[1].tolist() == labels.tolist()  # the rebuilt cache serves


class _Payload:
    """A pickle that would create a file when unpickled without weights_only=True."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_an_empty_pickles_folder_does_not_hide_the_mirror(cifar_mirror, empty_data_root, monkeypatch):
    """Bug caught: an empty cifar-10-batches-py/ (an interrupted download) made the mirror ignored."""
    (cifar_mirror(per_class=1) / "PARTIAL").touch()
    (empty_data_root / "cifar-10-batches-py").mkdir(parents=True)
    assert len(data.cifar10_tensors(download=False)[1]) == 10  # from the mirror
    monkeypatch.delenv("COURSE_DATA_MIRROR")
    (empty_data_root / "CIFAR10" / "train_uint8.pt").unlink()
    with pytest.raises(data.DatasetNotFoundError,
                       match=r"cifar-10-batches-py is incomplete, an interrupted download\?: it lacks batches\.meta"):
        data.cifar10_tensors(download=False)


def test_a_cache_that_cannot_be_written_only_costs_the_cache(cifar_mirror, empty_data_root, monkeypatch):
    """Bug caught: an unwritable cache folder failing the load, or leaving a half-written cache behind."""
    (cifar_mirror(per_class=1) / "PARTIAL").touch()
    (empty_data_root / "CIFAR10").mkdir(parents=True)
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "disk full")))
    with pytest.warns(UserWarning, match=r"could not write the cache .*disk full.*decoded again next time"):
        assert len(data.cifar10_tensors(download=False)[1]) == 10
    assert list((empty_data_root / "CIFAR10").iterdir()) == []


def test_a_16_bit_png_is_scaled_not_clipped_to_white(tmp_path):
    """Bug caught: PIL's convert("RGB") clips 16-bit grey to 255: an all-white image."""
    grey = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(grey).save(tmp_path / "deep.png")
    pixels = np.asarray(data.load_rgb(tmp_path / "deep.png"))
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    assert np.array_equal(pixels[..., 0], (grey >> 8).astype(np.uint8))
    with pytest.raises(data.DatasetNotFoundError, match=r"cannot decode .*broken\.jpg"):
        (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
        data.load_rgb(tmp_path / "broken.jpg")


def _fake_ants_bees(base, manifest=None):
    """A tiny ants/bees set under ``base``: two photos per class and split; returns its manifest."""
    manifest = {} if manifest is None else manifest
    for split in ("train", "val"):
        for label, cls in enumerate(data.HYMENOPTERA_CLASSES):
            folder = base / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(2):
                pixels = np.full((8, 8, 3), 100 * label + i, dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg")
                manifest[f"{split}/{cls}/{i}.jpg"] = hashlib.md5((folder / f"{i}.jpg").read_bytes()).hexdigest()
    return manifest


@pytest.fixture
def ants_bees(empty_data_root, tmp_path, monkeypatch):
    """A complete fake ants/bees set in a mirror, and the manifest that matches it."""
    manifest = _fake_ants_bees(tmp_path / "mirror" / "hymenoptera_data")
    monkeypatch.setattr(data, "_hymenoptera_manifest", lambda: manifest)
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    return tmp_path / "mirror" / "hymenoptera_data"


def test_a_hidden_folder_is_not_a_class_and_shifts_no_label(ants_bees):
    """Bug caught: JupyterLab's .ipynb_checkpoints became class 0, so ants were 1 and bees 2."""
    (ants_bees / "train" / ".ipynb_checkpoints").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(ants_bees / "train" / ".ipynb_checkpoints" / "x.jpg")
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(ants_bees / "train" / "ants" / ".hidden.jpg")
    ds = data.hymenoptera("train", download=False)
    assert ds.classes == ["ants", "bees"] and ds.class_to_idx == {"ants": 0, "bees": 1}
    assert [label for _, label in ds.samples] == [0, 0, 1, 1]


def test_a_half_unzipped_local_copy_does_not_shadow_the_full_mirror(ants_bees, empty_data_root):
    """Bug caught: a local copy with ants/ only shadowed the mirror and gave one class."""
    _fake_ants_bees(empty_data_root / "hymenoptera_data")
    for split in ("train", "val"):
        shutil.rmtree(empty_data_root / "hymenoptera_data" / split / "bees")
    with pytest.warns(UserWarning, match=r"hymenoptera_data lacks 4 of the set's 8 files .*passes it over"):
        ds = data.hymenoptera("train", download=False)
    assert Path(ds.root) == ants_bees / "train" and ds.classes == ["ants", "bees"]


def test_a_copy_without_a_class_folder_is_one_clear_error(tmp_path):
    """Bug caught: a copy with ants/ only loaded as a one-class dataset."""
    (tmp_path / "ants").mkdir()
    with pytest.raises(data.DatasetNotFoundError, match="has no class folder bees: a half-unzipped copy"):
        data.AntsBees(tmp_path)


def test_a_corrupt_photo_is_named(ants_bees):
    """Bug caught: a corrupt photo raising PIL's bare error in the middle of training, naming no file."""
    (ants_bees / "train" / "bees" / "1.jpg").write_bytes(b"\xff\xd8 truncated")
    ds = data.hymenoptera("train", download=False)
    with pytest.raises(data.DatasetNotFoundError, match=r"cannot decode .*train/bees/1\.jpg"):
        ds[3]


def _zip_of(folder: Path, target: Path) -> None:
    import zipfile

    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(folder.parent))


def test_the_ants_bees_download_is_checked(empty_data_root, tmp_path, monkeypatch):
    """Bug caught: no check of the download, so a truncated zip counted as present forever."""
    manifest = _fake_ants_bees(tmp_path / "published" / "hymenoptera_data")
    monkeypatch.setattr(data, "_hymenoptera_manifest", lambda: manifest)
    good_zip = tmp_path / "published.zip"
    _zip_of(tmp_path / "published" / "hymenoptera_data", good_zip)
    downloads = []

    def fake_download(url, root, filename):
        downloads.append(filename)
        shutil.copyfile(good_zip, Path(root) / filename)

    monkeypatch.setattr("torchvision.datasets.utils.download_url", fake_download)
    empty_data_root.mkdir(parents=True)
    (empty_data_root / "hymenoptera_data.zip").write_bytes(good_zip.read_bytes()[:100])  # cut short
    ds = data.hymenoptera("val")
    assert len(downloads) == 1 and len(ds) == 4 and ds.classes == ["ants", "bees"]
    shutil.rmtree(empty_data_root / "hymenoptera_data")
    manifest["val/bees/0.jpg"] = "0" * 32  # the published file differs from what arrives
    with pytest.raises(data.DatasetNotFoundError, match=r"1 files of the download are missing or differ .*val/bees/0\.jpg"):
        data.hymenoptera("val")
    assert not (empty_data_root / "hymenoptera_data.zip").exists()  # fetched again next time


def test_device_loaders_carve_the_validation_set_out_of_the_training_images(mirror, mirrored_root):
    """Bug caught: validating on the test split (lessons 05-07), which then no longer gives an
    unbiased final number. The validation images come from the training split, are not trained
    on, are not augmented, and the test set is untouched."""
    train, test = data.device_loaders("MNIST", "cpu", limit=600)
    train2, val, test2 = data.device_loaders("MNIST", "cpu", limit=600, val_size=100, augment=True)
    assert (len(train2.labels), len(val.labels)) == (500, 100)
    assert torch.equal(test2.images, test.images) and torch.equal(test2.labels, test.labels)
    every = torch.cat([train2.images, val.images]).flatten(1)
    assert sorted(map(bytes, every.numpy())) == sorted(map(bytes, train.images.flatten(1).numpy()))
    seen = {bytes(x) for x in train2.images.flatten(1).numpy()}
    assert not any(bytes(x) in seen for x in val.images.flatten(1).numpy())
    x, _ = next(iter(val))
    assert torch.equal(x, data.normalize(val.images[:len(x)], *data.STATS["MNIST"]))  # not augmented
    again = data.device_loaders("MNIST", "cpu", limit=600, val_size=100)[1]
    assert torch.equal(again.images, val.images)  # seeded
    with pytest.raises(ValueError, match="val_size=600 leaves nothing to train on"):
        data.device_loaders("MNIST", "cpu", limit=600, val_size=600)


@pytest.mark.parametrize("fname, content, problem", [
    ("train-labels-idx1-ubyte", _idx(np.arange(5)) + b"\0", "header announces 5 values (13 bytes in all), but the file holds 14"),
    ("train-labels-idx1-ubyte", _idx(np.zeros((5, 2, 2))), "does not start with the IDX magic number 0x00000801"),
    ("t10k-images-idx3-ubyte", _idx(np.arange(20)), "does not start with the IDX magic number 0x00000803"),
    ("t10k-images-idx3-ubyte", _idx(np.zeros((2, 3, 4)))[:10], "fewer than an IDX header"),
], ids=["one byte too many", "images as labels", "labels as images", "cut in the header"])
def test_an_idx_file_must_be_exactly_what_its_header_announces(tmp_path, fname, content, problem):
    """Bug caught: a file longer than its header announces (two files concatenated, a wrong
    download) accepted, or an image file taken for a label file, since only the magic's prefix
    or a too-short length was checked."""
    path = tmp_path / fname
    path.write_bytes(content)
    assert problem in data._idx_problem(path, fname)
    path.write_bytes(_idx(np.zeros((2, 3, 4)) if "idx3" in fname else np.arange(5)))
    assert data._idx_problem(path, fname) is None


# ------------------------------------------------------------ data loading: slips no test saw
class _NoDownload:
    """A torchvision dataset class that records the download it was asked for, and fails it."""

    asked: list = []

    def __init__(self, root, train=True, download=False, **kwargs):
        _NoDownload.asked.append((download, socket.getdefaulttimeout()))
        raise RuntimeError("offline")


@pytest.mark.parametrize("load", [lambda: data.fashion_mnist(download=False),
                                  lambda: data.load_tensors("MNIST", download=False),
                                  lambda: data.load_tensors("FashionMNIST", download=False)],
                         ids=["fashion_mnist", "load_tensors-MNIST", "load_tensors-FashionMNIST"])
def test_download_false_reaches_the_loader(empty_data_root, monkeypatch, load):
    """Bug caught: download=False dropped on the way (fashion_mnist, load_tensors), so a learner
    who asked for no download waits for one."""
    monkeypatch.setattr(_NoDownload, "asked", [])
    monkeypatch.setattr(datasets, "MNIST", _NoDownload)
    monkeypatch.setattr(datasets, "FashionMNIST", _NoDownload)
    with pytest.raises(data.DatasetNotFoundError) as info:
        load()
    assert _line(str(info.value), "download:") == "not attempted (download=False)"
    assert _NoDownload.asked == []


def test_a_download_restores_the_socket_timeout(empty_data_root, monkeypatch):
    """Bug caught: the 30 s socket timeout set for a download left on for the whole process (every
    later connection of the notebook then times out), or not set during the download."""
    monkeypatch.setattr(_NoDownload, "asked", [])
    monkeypatch.setattr(datasets, "MNIST", _NoDownload)
    before = socket.getdefaulttimeout()
    with pytest.raises(data.DatasetNotFoundError, match="download failed"):
        data.mnist(download=True)
    assert _NoDownload.asked == [(True, data.DOWNLOAD_TIMEOUT_S)]
    assert socket.getdefaulttimeout() == before


def test_fashion_mnist_passes_its_transform_and_split(mirror, mirrored_root):
    """Bug caught: fashion_mnist dropping its transform or train argument."""
    test = data.fashion_mnist(train=False, transform=lambda image: "transformed", download=False)
    assert len(test) == 10_000 and test[0][0] == "transformed"


def test_cifar_images_keep_their_orientation_and_upper_case_suffixes(tmp_path):
    """Bug caught: images transposed by a wrong permute (rows become columns; invisible on the
    uniform test images), or files named .PNG skipped."""
    _fake_cifar(tmp_path, "train", per_class=1, suffix=".PNG")
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    pixels = np.stack([rows, 2 * cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "cifar10-images" / "train" / "airplane" / "0.PNG")
    x, labels = data._cifar_from_folders(tmp_path / "cifar10-images" / "train")
    assert x.shape == (10, 3, 32, 32) and torch.equal(labels, torch.arange(10))
    assert torch.equal(x[0], torch.from_numpy(pixels).permute(2, 0, 1))
    assert x[0, 0, 5, 0] == 5 and x[0, 0, 0, 5] == 0  # row 5 is bright in the red channel, column 5 is not


def test_a_rewritten_image_of_the_same_size_rebuilds_the_cache(cifar_mirror):
    """Bug caught: the cache fingerprint without the files' modification times, so an image fixed
    in place (same name, same size) keeps being served from the old cache."""
    import os

    images = cifar_mirror(per_class=1)
    (images / "PARTIAL").touch()
    cat = images / "train" / "cat" / "0.png"
    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    pixels[..., 0] = 3
    Image.fromarray(pixels).save(cat, compress_level=0)  # uncompressed: the size does not depend on the colour
    before = data.cifar10_tensors(download=False)[0]
    size, stamp = cat.stat().st_size, cat.stat().st_mtime_ns
    pixels[..., 0] = 9
    Image.fromarray(pixels).save(cat, compress_level=0)
    os.utime(cat, ns=(stamp + 10**9, stamp + 10**9))
    assert cat.stat().st_size == size  # the test's premise: only the time tells the change
    after = data.cifar10_tensors(download=False)[0]
    assert before[3, 0, 0, 0] == 3 and after[3, 0, 0, 0] == 9


def test_a_cache_the_disk_cannot_hold_only_costs_the_cache(cifar_mirror, empty_data_root, monkeypatch):
    """Bug caught: torch's writer reporting a full disk as a RuntimeError ('unexpected pos'), which
    escaped as an error instead of costing only the cache."""
    (cifar_mirror(per_class=1) / "PARTIAL").touch()

    def full(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:778] . unexpected pos 3328 vs 3217")

    monkeypatch.setattr(torch, "save", full)
    with pytest.warns(UserWarning, match=r"could not write the cache .*RuntimeError.*unexpected pos"):
        assert len(data.cifar10_tensors(download=False)[1]) == 10
    assert list((empty_data_root / "CIFAR10").iterdir()) == []  # no half-written file left


def test_building_the_cifar_cache_removes_the_part_files_of_killed_builds(cifar_mirror, empty_data_root):
    """Bug caught: the .part file of a killed cache build left in data/CIFAR10 for ever."""
    (cifar_mirror(per_class=1) / "PARTIAL").touch()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = empty_data_root / "CIFAR10"
    folder.mkdir(parents=True)
    (folder / f".train_uint8.pt.{dead.pid}.part").write_bytes(b"x" * 100)
    data.cifar10_tensors(download=False)
    assert [p.name for p in folder.iterdir()] == ["train_uint8.pt"]


def test_a_bool_is_not_a_batch_size():
    """Bug caught: True accepted as batch_size=1 (bool is an int subclass)."""
    with pytest.raises(TypeError, match="batch_size must be a whole number >= 1, got True"):
        data.DeviceLoader(torch.zeros(4, 1), torch.zeros(4), batch_size=True)


def test_random_crop_flip_reaches_every_offset():
    """Bug caught: the random offset drawn from 0 .. 2 * padding - 1, so no crop is ever shifted
    fully to one side."""
    torch.manual_seed(0)
    images = torch.randint(1, 256, (200, 1, 6, 6), dtype=torch.uint8)
    out = data.random_crop_flip(images, padding=1, flip=False)
    padded = torch.nn.functional.pad(images, (1,) * 4)
    offsets = set()
    for i in range(len(images)):
        offsets |= {(r, c) for r in range(3) for c in range(3)
                    if torch.equal(out[i], padded[i, :, r:r + 6, c:c + 6])}
    assert offsets == {(r, c) for r in range(3) for c in range(3)}
