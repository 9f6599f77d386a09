"""The checks of lesson 08's exercises (your own images, transfer learning, shipping a model)."""
import copy
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..check import call_learner, check, exercise, fail, hint_for, require_int
from ..models import count_parameters

# ------------------------------------------------------------------------------ Exercise 1
# The folder the check writes: photos named <class>_<anything>, in every case of suffix, and what
# a real folder also holds: a greyscale file, a note, macOS's hidden "._" twin of a photo, and
# JupyterLab's hidden .ipynb_checkpoints folder.
_PHOTOS = ["dog_2.png", "cat_10.png", "bird_a.png", "cat_1.png", "dog_1.PNG", "bird_b.jpg"]


def _write_photos(folder: Path) -> list[str]:
    g = torch.Generator().manual_seed(8)
    for name in _PHOTOS:
        array = torch.randint(0, 256, (5, 6, 3), dtype=torch.uint8, generator=g).numpy()
        Image.fromarray(array).save(folder / name, format="JPEG" if name.endswith(".jpg") else "PNG")
    Image.fromarray(np.full((5, 6), 90, np.uint8)).save(folder / "cat_grey.png")
    (folder / "notes.txt").write_text("photos of the garden")
    Image.fromarray(np.zeros((5, 6, 3), np.uint8)).save(folder / "._cat_1.png")
    (folder / ".ipynb_checkpoints").mkdir()
    return sorted([*_PHOTOS, "cat_grey.png"])


@exercise("Exercise 1")
def ex1(NamedImages):
    from torchvision import transforms

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photos = _write_photos(folder)
        data = call_learner("NamedImages(folder)", NamedImages, folder,
                            hint="__init__(self, folder, transform=None) lists the files once")
        n = call_learner("len(data)", len, data, hint="__len__ returns how many photos there are")
        check(n, len(photos), "how many photos (the note, the hidden files and the folder are not photos)",
              hint="count the visible image files only: which names does a photo folder hold besides the photos, "
                   "and is .PNG a different kind of file from .png?")
        classes = getattr(data, "classes", None)
        check(classes, ["bird", "cat", "dog"], "data.classes, in the order ImageFolder would give them",
              hint="the classes are the names found before the first '_', each once, in the order that does not "
                   "depend on which file the folder lists first")
        for i, name in enumerate(photos):
            sample = call_learner(f"data[{i}]", data.__getitem__, i, hint="__getitem__(i) returns (image, label)")
            if not (isinstance(sample, tuple) and len(sample) == 2):
                fail(f"data[{i}] should be a pair (image, label), got {type(sample).__name__}", "return image, label")
            image, label = sample
            check(label, classes.index(name.split("_")[0]), f"the label of sample {i} ({name})",
                  hint="samples come in the sorted order of the file names; the label is the class's index "
                       "in data.classes")
            with Image.open(folder / name) as original:
                expected = np.asarray(original.convert("RGB"))
            check(np.asarray(image).shape, expected.shape, f"the image of sample {i} ({name}) is RGB",
                  hint="some files have another number of channels: PIL can convert an image's mode")
            check(torch.from_numpy(np.array(image)), torch.from_numpy(expected.copy()),
                  f"the pixels of sample {i} ({name})", hint="return the photo of that file, as the file holds it")
        with_transform = call_learner("NamedImages(folder, transform=transforms.ToTensor())", NamedImages, folder,
                                      transforms.ToTensor(), hint="keep the transform for __getitem__")
        image = call_learner("data[0] with a transform", with_transform.__getitem__, 0, hint="apply the transform")[0]
        check(isinstance(image, torch.Tensor) and tuple(image.shape), (3, 5, 6),
              "the transform is applied (ToTensor: a [3, 5, 6] tensor comes out)",
              hint="a transform passed to the Dataset should change what __getitem__ returns")


# ------------------------------------------------------------------------------ Exercise 2
@exercise("Exercise 2")
def ex2(prepare_for_transfer, ex2):
    import torchvision

    for name, classes in [("resnet18", 7), ("resnet50", 3)]:
        model = getattr(torchvision.models, name)(weights=None)
        fc_in, everything = model.fc.in_features, count_parameters(model)
        old_head = count_parameters(model.fc)
        prepared = call_learner(f"prepare_for_transfer({name}, {classes})", prepare_for_transfer, model, classes,
                                hint="freeze, replace the head, return the model")
        check(isinstance(prepared, nn.Module), True, f"{name}: prepare_for_transfer returns the model",
              hint="a function that changes the model should still hand it back")
        head = getattr(prepared, "fc", None)
        check(isinstance(head, nn.Linear) and (head.in_features, head.out_features), (fc_in, classes),
              f"{name}: fc is a new nn.Linear from the network's {fc_in} features to {classes} classes",
              hint="ResNet-50's last layer takes more features than ResNet-18's: take the number from the "
                   "layer you replace")
        trainable = count_parameters(prepared)
        slips = {0: "nothing is trainable, not even the new head: does the order of your two steps matter?",
                 everything - old_head + fc_in * classes + classes:
                     "the old network is still trainable: eval() changes how layers compute, not whether "
                     "their parameters get gradients"}
        check(trainable, fc_in * classes + classes, f"{name}: only the new head is trainable", reveal=False,
              hint=hint_for(trainable, slips, "freeze every parameter of the old network, and keep the new "
                                              "head's trainable"))
        out = call_learner(f"{name} prepared, on a [2, 3, 64, 64] batch", prepared, torch.zeros(2, 3, 64, 64),
                           hint="replace model.fc only; keep the rest of the network")
        check(tuple(out.shape), (2, classes), f"{name}: logits of shape (2, {classes})")
    require_int(ex2, "ex2", "count_parameters gives an int")
    head = 512 * 5 + 5
    slips = {0: "no parameter trainable means the head was frozen too",
             512 * 5: "a Linear layer learns more than its weight matrix",
             512 * 1000 + 1000: "that is ImageNet's old head: the new one has 5 outputs",
             count_parameters(torchvision.models.resnet18(num_classes=5)): "that counts the frozen parameters too"}
    check(ex2, head, "ex2: trainable parameters of ResNet-18 prepared for 5 classes", reveal=False,
          hint=hint_for(ex2, slips, "run your function on a fresh ResNet-18 and count what is still trainable"))


# ------------------------------------------------------------------------------ Exercise 3
@exercise("Exercise 3")
def ex3(head_and_backbone_groups):
    import torchvision

    for name, lr in [("resnet18", 1e-3), ("resnet34", 3e-4)]:
        model = getattr(torchvision.models, name)(weights=None, num_classes=4)
        groups = call_learner(f"head_and_backbone_groups({name}, lr={lr})", head_and_backbone_groups, model, lr,
                              hint="return a list of parameter groups: dicts with 'params' and 'lr'")
        if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) for g in groups):
            fail(f"{name}: expected a list of dicts (parameter groups), got {type(groups).__name__}",
                 "each group is a dict {'params': ..., 'lr': ...}")
        try:  # an lr nobody would choose: a group that leaves its lr out inherits it
            optimizer = torch.optim.SGD([dict(g) for g in groups], lr=123.0, momentum=0.9)
        except (ValueError, TypeError, KeyError) as exc:
            fail(f"{name}: torch.optim.SGD refuses these groups: {str(exc).splitlines()[0]}",
                 "each parameter may sit in one group only: which parameters belong to the head, and which to "
                 "the rest?")
        lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
        head = {id(p) for p in model.fc.parameters()}
        missing = [n for n, p in model.named_parameters() if id(p) not in lr_of]
        check(missing[:3], [], f"{name}: every parameter is in a group (names of those left out)",
              hint="fine-tuning trains the backbone too: it needs a group of its own")
        if 123.0 in lr_of.values():
            fail(f"{name}: a group has no 'lr' of its own, so it gets the optimiser's default",
                 "give every group its learning rate")
        check(sorted({lr_of[i] for i in head}), [10 * lr], f"{name}: the new head's learning rate", reveal=False,
              hint="the head starts from random weights and should move faster than the pretrained layers")
        others = sorted({v for i, v in lr_of.items() if i not in head})
        check(others, [lr], f"{name}: the pretrained layers' learning rate", reveal=False,
              hint="the pretrained layers keep the learning rate passed in; only the head's is larger")


# ------------------------------------------------------------------------------ Exercise 4
class _Tiny(nn.Module):
    """A small network with BatchNorm and dropout: train() and eval() give other answers."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.5),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(self.features(x))


def _tiny_model() -> nn.Module:
    g = torch.Generator().manual_seed(4)
    model = _Tiny()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                if name.endswith("running_var"):
                    tensor.copy_(0.5 + torch.rand(tensor.shape, generator=g))
                else:
                    tensor.copy_(torch.randn(tensor.shape, generator=g))
    return model


@exercise("Exercise 4")
def ex4(predict_photo):
    from torchvision import transforms

    classes = ["ants", "bees", "wasps"]
    preprocess = transforms.Compose([transforms.Resize((12, 12)), transforms.ToTensor(),
                                     transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])
    g = torch.Generator().manual_seed(9)
    with tempfile.TemporaryDirectory() as tmp:
        for i, mode in enumerate(["RGB", "RGBA", "L"]):   # a photo, a screenshot with alpha, a greyscale scan
            path = Path(tmp) / f"photo_{i}.png"
            pixels = torch.randint(0, 256, (10, 14, len(mode)), dtype=torch.uint8, generator=g).numpy()
            Image.fromarray(pixels.squeeze(-1) if mode == "L" else pixels, mode).save(path)
            model = _tiny_model().train()                    # as a model comes out of fit()
            before = copy.deepcopy(model.state_dict())
            with Image.open(path) as photo:
                x = preprocess(photo.convert("RGB")).unsqueeze(0)
            reference = copy.deepcopy(model).eval()
            with torch.no_grad():
                probabilities = torch.softmax(reference(x), dim=1)[0]
            what = f"predict_photo on a {mode} file"
            answer = call_learner(what, predict_photo, model, path, preprocess, classes,
                                  hint="open the file, preprocess it, add the batch dimension, and put the model in the "
                                       "mode for inference" if mode == "RGB" else
                                  f"this file is {mode}, not RGB (a screenshot can have a 4th channel, a scan only "
                                  "one): the network takes three")
            if not (isinstance(answer, tuple) and len(answer) == 2):
                fail(f"{what} should return a pair (class name, probability), got {type(answer).__name__}",
                     "return name, probability")
            name, probability = answer
            after = model.state_dict()
            changed = [k for k in before if not torch.equal(before[k], after[k])]
            check(changed, [], f"{what}: the model's weights and statistics are unchanged",
                  hint="a prediction should not change the model: which layers update something whenever they "
                       "run in training mode?")
            check(isinstance(probability, float), True, f"{what}: the probability is a Python float",
                  hint="turn a one-element tensor into a number")
            check(name, classes[int(probabilities.argmax())], f"{what}: the predicted class", reveal=False,
                  hint="two things make a network answer differently at inference: BatchNorm's statistics and "
                       "dropout; which mode turns both to inference?")
            check(probability, float(probabilities.max()), f"{what}: its probability", atol=1e-4, reveal=False,
                  hint="the network gives logits; the probabilities add up to 1 over the classes")
