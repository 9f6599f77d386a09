"""helpers.images: the three label layouts of lesson 08 give the same (image, label) pairs for
the same files; the folder traps (hidden folders, a missing class, 16-bit and broken files)
are caught; the seeded split and the crops do what they say; and the classes load in
DataLoader workers started by spawn, which is why they live in a module."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from helpers.data import DatasetNotFoundError
from helpers.images import (
    CsvImages,
    FileNameImages,
    FolderImages,
    ImageFiles,
    copy_with_labels_in_names,
    crop_and_flip,
    is_image_file,
    split_indices,
    to_tensors,
    write_labels_csv,
)

CLASSES = ["cat", "dog"]


def _pixels(dataset, i) -> np.ndarray:
    return np.asarray(dataset[i][0])


@pytest.fixture
def photos(tmp_path):
    """root/cat and root/dog with small random RGB files (one greyscale, one .jpg), a hidden
    .ipynb_checkpoints folder holding an image, a hidden file and a text file."""
    g = torch.Generator().manual_seed(0)
    root = tmp_path / "photos"
    names = {"cat": ["c2.png", "c1.png", "c3.jpg"], "dog": ["d1.png", "d2.png"]}
    for label, files in names.items():
        (root / label).mkdir(parents=True)
        for name in files:
            array = torch.randint(0, 256, (5, 7, 3), dtype=torch.uint8, generator=g).numpy()
            Image.fromarray(array).save(root / label / name, quality=95)
    Image.fromarray(np.full((5, 7), 80, np.uint8)).save(root / "dog" / "grey.png")
    (root / "cat" / "notes.txt").write_text("not an image")
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(root / "cat" / "._c1.png")  # macOS's shadow file
    (root / ".ipynb_checkpoints").mkdir()
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(root / ".ipynb_checkpoints" / "c1-checkpoint.png")
    return root


def test_is_image_file():
    assert is_image_file("a/b/x.JPG") and is_image_file("x.png") and is_image_file("x.jpeg")
    assert not is_image_file("a/.x.png") and not is_image_file("x.gif") and not is_image_file("notes.txt")


def test_folder_images_skip_hidden_folders_and_files(photos):
    data = FolderImages(photos)
    assert data.classes == CLASSES
    names = [(Path(p).name, y) for p, y in data.samples]
    assert names == [("c1.png", 0), ("c2.png", 0), ("c3.jpg", 0), ("d1.png", 1), ("d2.png", 1), ("grey.png", 1)]
    assert data[5][0].mode == "RGB" and np.asarray(data[5][0]).shape == (5, 7, 3)
    # torchvision's ImageFolder takes the hidden folder for class 0 and shifts every label
    plain = datasets.ImageFolder(str(photos))
    assert plain.classes[0] == ".ipynb_checkpoints" and plain.class_to_idx["cat"] == 1


def test_folder_images_check_the_expected_classes(photos, tmp_path):
    assert FolderImages(photos, classes=["dog", "cat"]).classes == ["dog", "cat"]  # the label order asked for
    assert FolderImages(photos, classes=["dog", "cat"]).samples[0][1] == 1         # cat is label 1 then
    half = tmp_path / "half"
    shutil.copytree(photos / "cat", half / "cat")                                   # a half-unzipped copy
    assert datasets.ImageFolder(str(half)).classes == ["cat"]                       # one class, no complaint
    with pytest.raises(DatasetNotFoundError, match="dog"):
        FolderImages(half, classes=CLASSES)
    (half / "dog").mkdir()
    (half / "bird").mkdir()
    with pytest.raises(ValueError, match="bird"):
        FolderImages(half, classes=CLASSES)
    with pytest.raises(ValueError, match="distinct"):
        FolderImages(photos, classes=["cat", "cat"])


def test_the_three_layouts_give_the_same_pairs(photos, tmp_path):
    """The lesson's claim: the same files, stored three ways, are the same data set."""
    folder = FolderImages(photos)
    csv_path = write_labels_csv(folder.samples, folder.classes, tmp_path / "labels.csv", root=photos)
    assert csv_path.read_text().splitlines()[:2] == ["path,label", "cat/c1.png,cat"]
    from_csv = CsvImages(csv_path, root=photos)
    named = FileNameImages(copy_with_labels_in_names(folder.samples, folder.classes, tmp_path / "named"))
    assert from_csv.classes == named.classes == folder.classes

    def by_file(dataset, strip_label=False):
        pairs = {}
        for i, (path, label) in enumerate(dataset.samples):
            name = Path(path).name.split("_", 1)[1] if strip_label else Path(path).name
            pairs[name] = (label, _pixels(dataset, i))
        return pairs

    expected = by_file(folder)
    for other in (by_file(from_csv), by_file(named, strip_label=True)):
        assert other.keys() == expected.keys()
        for name, (label, pixels) in expected.items():
            assert other[name][0] == label, name
            np.testing.assert_array_equal(other[name][1], pixels, err_msg=name)
    tensor_data = CsvImages(csv_path, root=photos, transform=transforms.PILToTensor())
    assert tensor_data[0][0].dtype == torch.uint8 and tensor_data[0][0].shape == (3, 5, 7)


def test_csv_images_errors_name_the_line(photos, tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("file,class\ncat/c1.png,cat\n")
    with pytest.raises(ValueError, match="header"):
        CsvImages(csv_path, root=photos)
    csv_path.write_text("path,label\ncat/c1.png,cat\ndog/d1.png,bird\n")
    with pytest.raises(ValueError, match="line 3.*bird"):
        CsvImages(csv_path, root=photos, classes=CLASSES)
    csv_path.write_text("path,label\ncat/c1.png,cat\ncat/gone.png,cat\n")
    with pytest.raises(DatasetNotFoundError, match="line 3.*gone.png"):
        CsvImages(csv_path, root=photos)
    csv_path.write_text("path,label\n")
    with pytest.raises(ValueError, match="no images"):
        CsvImages(csv_path, root=photos)
    csv_path.write_text("path,label\ncat/c1.png,cat\n")
    assert CsvImages(csv_path, root=photos, classes=["dog", "cat"]).targets == [1]


def test_file_name_images(tmp_path):
    folder = tmp_path / "named"
    folder.mkdir()
    for name in ["dog_1.png", "cat_2.png", "cat_1.png", ".cat_3.png"]:
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("x")
    data = FileNameImages(folder)
    assert [Path(p).name for p, _ in data.samples] == ["cat_1.png", "cat_2.png", "dog_1.png"]
    assert data.targets == [0, 0, 1] and data.classes == CLASSES
    assert FileNameImages(folder, classes=["dog", "cat"]).targets == [1, 1, 0]
    with pytest.raises(ValueError, match="dog"):
        FileNameImages(folder, classes=["cat"])
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / "nolabel.png")
    with pytest.raises(ValueError, match="nolabel.png"):
        FileNameImages(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError):
        FileNameImages(empty)


def test_copy_with_labels_in_names_refuses_two_files_of_one_name(photos, tmp_path):
    samples = [(photos / "cat" / "c1.png", 0), (photos / "cat" / "c1.png", 0)]
    with pytest.raises(ValueError, match="cat_c1.png"):
        copy_with_labels_in_names(samples, CLASSES, tmp_path / "named")


def test_sixteen_bit_and_broken_files(photos):
    ramp = np.linspace(0, 65535, 5 * 7).reshape(5, 7).astype(np.uint16)
    Image.fromarray(ramp).save(photos / "dog" / "deep.png")
    data = FolderImages(photos)
    deep = data.samples.index((str(photos / "dog" / "deep.png"), 1))
    pixels = _pixels(data, deep)
    np.testing.assert_array_equal(pixels[..., 0], (ramp >> 8).astype(np.uint8))   # scaled, not clipped
    plain = datasets.ImageFolder(str(photos))                                        # its default loader: white
    assert (np.asarray(plain[plain.samples.index(data.samples[deep][:1] + (2,))][0]) == 255).mean() > 0.9
    good = (photos / "cat" / "c1.png").read_bytes()
    (photos / "cat" / "c1.png").write_bytes(good[:len(good) // 2])
    with pytest.raises(DatasetNotFoundError, match="c1.png"):
        FolderImages(photos)[0]


def test_image_files_checks_its_classes():
    with pytest.raises(ValueError):
        ImageFiles([], [])
    assert repr(ImageFiles([("a.png", 1)], CLASSES)) == "ImageFiles(1 images, classes ['cat', 'dog'])"


def test_split_indices_is_a_seeded_stratified_partition():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    train, val, test = split_indices(labels, (0.6, 0.2, 0.2), seed=0)
    assert sorted(train + val + test) == list(range(100))                        # each sample exactly once
    for part, n in [(train, 60), (val, 20), (test, 20)]:
        assert part == sorted(part) and len(part) == n
        counts = torch.bincount(labels[part], minlength=3).tolist()
        assert counts == [round(n * 0.5), round(n * 0.3), round(n * 0.2)]         # each class in proportion
    assert split_indices(labels, (0.6, 0.2, 0.2), seed=0) == [train, val, test]  # the same on every run
    assert split_indices(labels, (0.6, 0.2, 0.2), seed=1)[2] != test
    assert split_indices([0, 1, 1], (0.5, 0.5), seed=3)[0] in ([0, 1], [0, 2], [1], [2], [0])
    for bad in [(0.5, 0.6), (-0.1, 1.1)]:
        with pytest.raises(ValueError):
            split_indices(labels, bad)
    with pytest.raises(ValueError):
        split_indices([], (1.0,))


def test_crop_and_flip():
    x = torch.arange(2 * 3 * 6 * 7).view(2, 3, 6, 7)
    centre = crop_and_flip(x, 4, train=False)
    assert torch.equal(centre, x[..., 1:5, 1:5])
    torch.manual_seed(0)
    windows = {(top, left, flip): x[..., top:top + 4, left:left + 4].flip(3) if flip else x[..., top:top + 4,
                                                                                         left:left + 4]
               for top in range(3) for left in range(4) for flip in (False, True)}
    seen = set()
    for _ in range(60):
        crops = crop_and_flip(x, 4)
        assert crops.shape == (2, 3, 4, 4)
        for i in range(2):
            match = [key for key, w in windows.items() if torch.equal(crops[i], w[i])]
            assert len(match) == 1                       # a window of the image, all channels alike
            seen.add(match[0])
    assert len(seen) > 12 and {flip for _, _, flip in seen} == {False, True}
    with pytest.raises(ValueError):
        crop_and_flip(x, 7)


def test_to_tensors(photos):
    data = FolderImages(photos, transform=transforms.Compose([transforms.Resize((4, 4)), transforms.PILToTensor()]))
    images, labels = to_tensors(data, batch_size=4)
    assert images.shape == (6, 3, 4, 4) and images.dtype == torch.uint8
    assert labels.tolist() == data.targets and labels.dtype == torch.int64


def test_the_datasets_load_in_spawned_workers(photos, tmp_path):
    """The reason for the module: a worker started by spawn (Windows, macOS) or forkserver
    (Linux from Python 3.14) imports the Dataset's class by name, which works for these."""
    folder = FolderImages(photos, transform=transforms.Compose([transforms.Resize((4, 4)),
                                                                transforms.PILToTensor()]))
    csv_path = write_labels_csv(folder.samples, folder.classes, tmp_path / "labels.csv", root=photos)
    from_csv = CsvImages(csv_path, root=photos, transform=folder.transform)
    for dataset in (folder, from_csv):
        loader = DataLoader(dataset, batch_size=6, num_workers=1, multiprocessing_context="spawn", timeout=120)
        images, labels = next(iter(loader))
        assert images.shape == (6, 3, 4, 4) and labels.tolist() == dataset.targets


def test_the_three_layouts_agree_on_the_ants_and_bees(mirror, tmp_path):
    """The same check on real photos (the first ones of each class, to stay quick)."""
    root = mirror / "hymenoptera_data" / "train"
    folder = FolderImages(root, classes=["ants", "bees"])
    assert len(folder) == 244 and folder.classes == ["ants", "bees"]
    few = [s for s in folder.samples if s[1] == 0][:4] + [s for s in folder.samples if s[1] == 1][:4]
    csv_path = write_labels_csv(few, folder.classes, tmp_path / "labels.csv", root=root)
    named = FileNameImages(copy_with_labels_in_names(few, folder.classes, tmp_path / "named"))
    from_csv = CsvImages(csv_path, root=root, classes=folder.classes)
    for i, (path, label) in enumerate(few):
        pixels = np.asarray(folder[folder.samples.index((path, label))][0])
        assert from_csv.samples[i] == (path, label)
        np.testing.assert_array_equal(np.asarray(from_csv[i][0]), pixels)
        j = [Path(p).name for p, _ in named.samples].index(f"{folder.classes[label]}_{Path(path).name}")
        assert named.targets[j] == label
        np.testing.assert_array_equal(np.asarray(named[j][0]), pixels)
