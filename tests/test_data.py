import time

import numpy as np
import pytest
import torch
from torchvision import datasets

from helpers import data


@pytest.fixture(scope="module")
def mirrored_root(tmp_path_factory):
    """A fresh data root that is filled from the mirror once for this module."""
    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_DATA_ROOT", str(root))
        yield root


# ------------------------------------------------------------------ MNIST and FashionMNIST
@pytest.mark.parametrize("fashion", [False, True], ids=["MNIST", "FashionMNIST"])
def test_real_mnist_from_the_mirror(mirror, mirrored_root, fashion):
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
    ds = data.mnist(train=False)
    images, labels = data.load_tensors("MNIST", train=False)
    assert images.shape == (10_000, 1, 28, 28) and labels.dtype == torch.int64
    image, label = ds[123]  # a PIL image and an int
    assert torch.equal(images[123, 0], torch.from_numpy(np.array(image)))
    assert labels[123].item() == label
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_tensors("ImageNet")


def test_missing_mnist_says_what_and_where_and_how(empty_data_root):
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist(download=False)
    message = str(info.value)
    for needle in ["MNIST is not available", "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                   str(empty_data_root / "MNIST" / "raw"), "COURSE_DATA_MIRROR: not set", "How to fix"]:
        assert needle in message


def test_failed_download_is_fast_and_explained(empty_data_root, monkeypatch):
    # A port nothing listens on: the download fails at once, like an offline machine.
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    start = time.monotonic()
    with pytest.raises(data.DatasetNotFoundError, match="download failed"):
        data.mnist(download=True)
    assert time.monotonic() - start < 10


def test_an_incomplete_mirror_is_reported(empty_data_root, tmp_path, monkeypatch):
    partial = tmp_path / "mirror" / "MNIST" / "raw"
    partial.mkdir(parents=True)
    (partial / "train-images-idx3-ubyte.gz").write_bytes(b"")
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.mnist(download=False)
    assert str(partial) in str(info.value) and "t10k-images-idx3-ubyte" in str(info.value)


def test_a_corrupt_mirror_file_is_reported_not_half_copied(empty_data_root, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror" / "MNIST" / "raw"
    mirror.mkdir(parents=True)
    for name in data.IDX_FILES:
        (mirror / (name + ".gz")).write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(data.DatasetNotFoundError, match="unreadable"):
        data.mnist(download=False)
    raw = empty_data_root / "MNIST" / "raw"
    assert list(raw.iterdir()) == []  # no partial file left to be mistaken for data


# --------------------------------------------------------------------------- CIFAR-10
def test_real_cifar10_test_set_from_the_mirror(mirror, mirrored_root):
    images, labels = data.cifar10_tensors(train=False, download=False)
    assert images.shape == (10_000, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(torch.bincount(labels), torch.full((10,), 1_000))
    # The published per-channel means of the original CIFAR-10 test images (0..255).
    means = images.float().mean(dim=(0, 2, 3))
    assert torch.allclose(means, torch.tensor([126.0, 123.7, 114.9]), atol=1.0), means
    assert (mirrored_root / "CIFAR10" / "test_uint8.pt").is_file()
    again = data.cifar10_tensors(train=False, download=False)  # from the cache
    assert torch.equal(again[0], images) and torch.equal(again[1], labels)


def test_cifar_folders_must_hold_32x32_images(tmp_path):
    from PIL import Image

    for cls in data.CIFAR10_CLASSES:
        (tmp_path / cls).mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "cat" / "0001.png")
    with pytest.raises(ValueError, match="3x32x32"):
        data._cifar_from_folders(tmp_path)


def test_missing_cifar10_is_explained(empty_data_root):
    with pytest.raises(data.DatasetNotFoundError, match="CIFAR-10 is not available"):
        data.cifar10_tensors(download=False)


# ------------------------------------------------------------------------ ants and bees
def test_real_hymenoptera_from_the_mirror(mirror, mirrored_root):
    train, val = data.hymenoptera("train", download=False), data.hymenoptera("val", download=False)
    assert (len(train), len(val)) == (244, 153)  # the tutorial's sizes (the .gif is skipped)
    assert train.classes == ["ants", "bees"]
    with pytest.raises(ValueError, match="split"):
        data.hymenoptera("test")


def test_missing_hymenoptera_is_explained(empty_data_root):
    with pytest.raises(data.DatasetNotFoundError, match="hymenoptera_data/train/"):
        data.hymenoptera("train", download=False)


# ------------------------------------------------------------------------ DeviceLoader
def test_device_loader_visits_every_sample_once_per_epoch():
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
    x, y = torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10)
    loader = data.DeviceLoader(x, y, batch_size=4, drop_last=True, transform=lambda b: b.float() + 1)
    batches = list(loader)
    assert len(loader) == len(batches) == 2
    assert torch.equal(torch.cat([b[1] for b in batches]), torch.arange(8))
    assert batches[0][0].dtype == torch.float32 and batches[0][0].min() == 1


def test_device_loader_rejects_bad_input():
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        data.DeviceLoader(torch.zeros(10, 1), torch.zeros(9))
    with pytest.raises(ValueError, match="batch_size"):
        data.DeviceLoader(torch.zeros(10, 1), torch.zeros(10), batch_size=0)


def test_normalize_scales_then_standardises():
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1)
    out = data.normalize(images, (0.5,), (0.5,))
    assert torch.allclose(out.flatten(), torch.tensor([-1.0, 1.0]))
    with pytest.raises(TypeError, match="uint8"):
        data.normalize(images.float(), (0.5,), (0.5,))
    with pytest.raises(ValueError, match=r"\[N,3,H,W\]"):
        data.normalize(images, (0.5, 0.5, 0.5), (1, 1, 1))


def test_random_crop_flip_takes_shifted_or_mirrored_crops():
    torch.manual_seed(0)
    images = torch.randint(1, 256, (64, 3, 8, 8), dtype=torch.uint8)
    out = data.random_crop_flip(images, padding=2)
    assert out.shape == images.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(images, (2,) * 4)
    flips = 0
    for i in range(len(images)):
        crops = [padded[i, :, r:r + 8, c:c + 8] for r in range(5) for c in range(5)]
        plain = any(torch.equal(out[i], crop) for crop in crops)
        mirrored = any(torch.equal(out[i], crop.flip(2)) for crop in crops)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 10 < flips < 54  # about half are flipped
    assert not torch.equal(out, images)


def test_device_loaders_normalise_a_seeded_subset(mirror):
    train, test = data.device_loaders("MNIST", "cpu", batch_size=500, limit=2_000)
    assert (len(train.labels), len(test.labels)) == (2_000, 400)
    x, y = next(iter(train))
    assert x.shape == (500, 1, 28, 28) and x.dtype == torch.float32
    assert abs(float(x.mean())) < 0.15 and abs(float(x.std()) - 1) < 0.15
    again, _ = data.device_loaders("MNIST", "cpu", batch_size=500, limit=2_000)
    assert torch.equal(again.labels, train.labels)
