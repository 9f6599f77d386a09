"""Your own image files as data sets (lesson 08).

The three ways of storing the labels that the course's notes list, each a ``Dataset`` of
``(image, label)`` pairs over the same kind of files:

- :class:`FolderImages`: the folder name is the label (``root/ants/0013035.jpg``), as
  torchvision's ``ImageFolder``, but hidden folders and files are not classes or images;
- :class:`CsvImages`: the labels are in a separate file, a CSV of ``path,label`` rows
  (:func:`write_labels_csv` writes one);
- :class:`FileNameImages`: the label is in the file name (``ants_0013035.jpg``).

They live in a module, not in a notebook, because ``DataLoader`` workers started by
``spawn`` (Windows, macOS) or ``forkserver`` (Linux from Python 3.14) import the Dataset's
class by its module and name: a class defined in a notebook cannot be found there.
Images are read with :func:`helpers.data.load_rgb`: 8-bit RGB, 16-bit greyscale scaled
rather than clipped to white, and a file that does not decode is an error that names it.
:func:`split_indices` splits a data set into train / validation / test with a seed, and
:func:`to_tensors` decodes one, once, into a uint8 tensor.
"""
import csv
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets

from .data import DatasetNotFoundError, load_rgb

CSV_COLUMNS = ("path", "label")


def is_image_file(path) -> bool:
    """A visible file with an image suffix: hidden files (``.ipynb_checkpoints`` copies,
    macOS's ``._`` files) and other files (a ``.gif``, notes) are not images of the set."""
    name = os.path.basename(path)
    return not name.startswith(".") and name.lower().endswith(datasets.folder.IMG_EXTENSIONS)


def _class_index(classes) -> dict[str, int]:
    classes = list(classes)
    if not classes or len(set(classes)) != len(classes) or not all(isinstance(c, str) and c for c in classes):
        raise ValueError(f"classes must be distinct, non-empty names, got {classes!r}")
    return {name: i for i, name in enumerate(classes)}


class ImageFiles(Dataset):
    """``(transform(image), label)`` for a list of ``(path, label)`` samples: what the three
    layouts share. ``classes[label]`` names a label; ``targets`` lists every sample's label."""

    def __init__(self, samples, classes, transform=None):
        self.class_to_idx = _class_index(classes)
        self.classes = list(classes)
        self.samples = [(str(path), int(label)) for path, label in samples]
        self.targets = [label for _, label in self.samples]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        image = load_rgb(path)
        return (self.transform(image) if self.transform is not None else image), label

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} images, classes {self.classes})"


class FolderImages(datasets.ImageFolder):
    """The folder name is the label: ``root/<class>/<file>``, like ``ImageFolder`` (whose
    ``find_classes`` and ``is_valid_file`` it sets), but

    - hidden folders (``.ipynb_checkpoints``, which JupyterLab creates) are not classes, and
      hidden files are not images;
    - ``classes=[...]`` names the classes you expect, in label order: a missing class folder
      (a half-unzipped copy) or an extra one is an error instead of a shifted label;
    - images are read by :func:`helpers.data.load_rgb`.
    """

    def __init__(self, root, classes: Sequence[str] | None = None, transform=None):
        self.expected = None if classes is None else list(_class_index(classes))
        super().__init__(str(root), transform=transform, loader=load_rgb, is_valid_file=is_image_file)

    def find_classes(self, directory):
        found = sorted(entry.name for entry in os.scandir(directory)
                       if entry.is_dir() and not entry.name.startswith("."))
        if self.expected is not None:
            missing = [c for c in self.expected if c not in found]
            extra = [c for c in found if c not in self.expected]
            if missing:
                raise DatasetNotFoundError(f"{directory} has no folder for the classes {missing} (it has {found}): "
                                           "a half-unzipped copy? Unzip it again")
            if extra:
                raise ValueError(f"{directory} has folders {extra} that are not among the classes "
                                 f"{self.expected}: remove them, or name them in classes")
            found = self.expected
        if not found:
            raise DatasetNotFoundError(f"{directory} has no class folders (one sub-folder per class)")
        return found, {name: i for i, name in enumerate(found)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} images, classes {self.classes})"


class CsvImages(ImageFiles):
    """The labels are in a separate file: a CSV with the header ``path,label`` and one row
    per image, the path relative to ``root`` (default: the CSV's folder) and the label a
    class name. ``classes`` gives the label order; left out, it is the sorted names found."""

    def __init__(self, csv_path, root=None, classes: Sequence[str] | None = None, transform=None):
        csv_path = Path(csv_path)
        root = Path(root) if root is not None else csv_path.parent
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
                raise ValueError(f"{csv_path.name}: the header must be {','.join(CSV_COLUMNS)}, "
                                 f"got {','.join(reader.fieldnames or ['(nothing)'])}")
            rows = [(row["path"], row["label"], reader.line_num) for row in reader]
        if not rows:
            raise ValueError(f"{csv_path.name} lists no images")
        classes = sorted({label for _, label, _ in rows}) if classes is None else list(classes)
        index = _class_index(classes)
        samples = []
        for path, label, line in rows:
            if label not in index:
                raise ValueError(f"{csv_path.name}, line {line}: the label {label!r} is not among the classes {classes}")
            if not (root / path).is_file():
                raise DatasetNotFoundError(f"{csv_path.name}, line {line}: no file {path} in {root}")
            samples.append((root / path, index[label]))
        super().__init__(samples, classes, transform)


class FileNameImages(ImageFiles):
    """The label is in the file name: ``folder/<class><sep><anything>.<suffix>``, e.g.
    ``ants_0013035.jpg``. Only visible image files count (:func:`is_image_file`); they come
    in sorted order. ``classes`` gives the label order; left out, it is the sorted names
    found. A name without ``sep`` or with an unknown class is an error that names the file."""

    def __init__(self, folder, classes: Sequence[str] | None = None, transform=None, sep: str = "_"):
        folder = Path(folder)
        files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p.name))
        if not files:
            raise DatasetNotFoundError(f"{folder} holds no image files")
        unlabelled = [p.name for p in files if sep not in p.name]
        if unlabelled:
            raise ValueError(f"{unlabelled[0]} (and {len(unlabelled) - 1} more) has no {sep!r} in its name: "
                             f"name the files <class>{sep}<anything>")
        names = [p.name.split(sep, 1)[0] for p in files]
        classes = sorted(set(names)) if classes is None else list(classes)
        index = _class_index(classes)
        unknown = sorted({name for name in names if name not in index})
        if unknown:
            raise ValueError(f"{folder} has files of the classes {unknown}, which are not among {classes}")
        super().__init__([(p, index[name]) for p, name in zip(files, names)], classes, transform)


def write_labels_csv(samples, classes, csv_path, root) -> Path:
    """Write ``(path, label)`` samples as a ``path,label`` CSV that :class:`CsvImages` reads:
    paths relative to ``root`` (with ``/``, on every platform), labels as class names."""
    csv_path, root = Path(csv_path), Path(root)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for path, label in samples:
            writer.writerow([Path(path).relative_to(root).as_posix(), classes[label]])
    return csv_path


def copy_with_labels_in_names(samples, classes, folder, sep: str = "_") -> Path:
    """Copy every ``(path, label)`` sample into one ``folder`` as ``<class><sep><file name>``:
    the layout :class:`FileNameImages` reads. Two samples with one file name are an error."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    seen = set()
    for path, label in samples:
        name = f"{classes[label]}{sep}{Path(path).name}"
        if name in seen:
            raise ValueError(f"two images would both be copied to {name}")
        seen.add(name)
        shutil.copyfile(path, folder / name)
    return folder


def split_indices(labels, fractions=(0.6, 0.2, 0.2), seed: int = 0) -> list[list[int]]:
    """Split sample indices into parts (train, validation, test) of about ``fractions`` of
    each class (stratified), shuffled with ``seed``: the same split on every run and machine.

    Per class, part k gets ``round(cumulative fraction)`` boundaries, so every sample is in
    exactly one part and each part holds each class in about the same proportion. Each part's
    indices come sorted."""
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or not len(labels):
        raise ValueError("labels must be a non-empty 1-d sequence")
    fractions = [float(f) for f in fractions]
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be >= 0 and add up to 1, got {fractions}")
    g = torch.Generator().manual_seed(seed)
    parts: list[list[int]] = [[] for _ in fractions]
    for label in torch.unique(labels).tolist():
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=g)].tolist()
        bounds, total = [0], 0.0
        for f in fractions:
            total += f
            bounds.append(round(total * len(members)))
        for part, start, stop in zip(parts, bounds, bounds[1:]):
            part.extend(members[start:stop])
    return [sorted(part) for part in parts]


def to_tensors(dataset, batch_size: int = 64, num_workers: int = 0, **loader_options):
    """Decode a whole data set once, through a ``DataLoader``: ``(images [N, C, H, W],
    labels int64 [N])``. The dataset's transform must give tensors of one shape (resize and
    crop, then ``PILToTensor`` for uint8). Workers decode in parallel (``num_workers``)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, **loader_options)
    images, labels = [], []
    for x, y in loader:
        images.append(x)
        labels.append(torch.as_tensor(y))
    if not images:
        raise ValueError("the data set is empty")
    return torch.cat(images), torch.cat(labels).long()


def crop_and_flip(images: torch.Tensor, size: int, train: bool = True) -> torch.Tensor:
    """Square ``size`` crops of a batch ``[N, C, H, W]``, on its device: for training
    (``train=True``) a random crop per image, mirrored left-right with probability 1/2 (each
    drawn per image, from torch's global generator); else the centre crop, the same every
    time (for validation, testing and prediction)."""
    n, c, h, w = images.shape
    if not (0 < size <= min(h, w)):
        raise ValueError(f"cannot crop {size}×{size} out of {h}×{w} images")
    if not train:
        top, left = (h - size) // 2, (w - size) // 2
        return images[..., top:top + size, left:left + size]
    device = images.device
    top = torch.randint(0, h - size + 1, (n, 1, 1, 1)).to(device)
    left = torch.randint(0, w - size + 1, (n, 1, 1, 1)).to(device)
    rows = top + torch.arange(size, device=device).view(1, 1, size, 1)     # [n, 1, size, 1]
    cols = left + torch.arange(size, device=device).view(1, 1, 1, size)    # [n, 1, 1, size]
    batch = torch.arange(n, device=device).view(n, 1, 1, 1)
    channels = torch.arange(c, device=device).view(1, c, 1, 1)
    crops = images[batch, channels, rows, cols]                             # [n, c, size, size]
    mirrored = (torch.rand(n, 1, 1, 1) < 0.5).to(device)
    return torch.where(mirrored, crops.flip(3), crops)
