"""The checks of lesson 07's exercises (classic networks)."""
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..check import CheckFailed, check, exercise
from ..models import ResidualBlock, count_macs, count_parameters, vgg_block


def _fail(what: str, hint: str):
    raise CheckFailed(f"{what}\nhint: {hint}")


def _call(what: str, function, *args, hint: str):
    """``function(*args)``; an error in the learner's code becomes one ✗ line that names the call."""
    try:
        return function(*args)
    except CheckFailed:
        raise
    except Exception as exc:  # the learner's code raised: say where, without a traceback
        _fail(f"{what} raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", hint)


def _hint_for(answer, slips: dict, default: str) -> str:
    """The hint for a known slip (its wrong value -> a hint at the idea it misses), else ``default``."""
    for value, hint in slips.items():
        if answer == value and type(answer) is type(value):
            return hint
    return default


def _is_int(answer, name: str, hint: str):
    if not (isinstance(answer, int) and not isinstance(answer, bool)):
        _fail(f"{name} should be a Python int, got {type(answer).__name__} {answer!r}", hint)


# ------------------------------------------------------------------------------ Exercise 1
@exercise("Exercise 1")
def ex1(ex1):
    _is_int(ex1, "the answer", "write the count as arithmetic on integers (no /, which gives a float)")
    expected = count_parameters(vgg_block(128, 256, num_convs=3))
    conv_weights = [256 * c_in * 3 * 3 for c_in in (128, 256, 256)]
    slips = {
        expected + 3 * 256: "each convolution here is followed by BatchNorm and is built without a bias: "
                            "does your count give it one?",
        expected + 3 * 2 * 256: "BatchNorm learns a scale and a shift per channel; its running mean and "
                                "variance are buffers, not trainable parameters",
        expected + 3 * 2 * 256 + 3 * 256: "count only what is trained: which layers have a bias, and which "
                                          "of BatchNorm's numbers are learned?",
        sum(conv_weights): "the BatchNorm layers learn parameters too",
        3 * (256 * 128 * 9 + 2 * 256): "only the first convolution sees 128 input channels: what do the next "
                                       "two see?",
        3 * (256 * 256 * 9 + 2 * 256): "the first convolution gets the block's input: how many channels is "
                                       "that?",
        count_parameters(vgg_block(64, 128, num_convs=2)): "that is section 2's block: this one has other "
                                                           "channels and three convolutions",
    }
    check(ex1, expected, "the block's trainable parameters", reveal=False,
          hint=_hint_for(ex1, slips, "count each layer on its own: how many channels go in and out of each "
                                     "convolution, does it have a bias, and what does BatchNorm learn?"))


# ------------------------------------------------------------------------------ Exercise 2
def _randomise(module: nn.Module, generator: torch.Generator):
    """Seeded random weights and BatchNorm statistics, so that F(x) takes both signs."""
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue                                    # BatchNorm's num_batches_tracked
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            else:
                tensor.copy_(0.3 * torch.randn(tensor.shape, generator=generator))


def _copy_into(reference: nn.Module, learner: nn.Module, part: str, what: str):
    """Copy the learner's ``part`` (body or shortcut) tensors, in order, into the reference's."""
    theirs = [t for t in getattr(learner, part).state_dict().values() if t.is_floating_point()]
    ours = [t for t in getattr(reference, part).state_dict().values() if t.is_floating_point()]
    if [t.shape for t in theirs] != [t.shape for t in ours]:
        _fail(f"{what}: self.{part} does not hold the layers the exercise describes, in that order",
              "F is conv, BN, ReLU, conv, BN; a projection shortcut is a 1×1 conv, then BN")
    with torch.no_grad():
        for target, source in zip(ours, theirs):
            target.copy_(source)


@exercise("Exercise 2")
def ex2(MyResidualBlock):
    g = torch.Generator().manual_seed(7)
    for c_in, c_out, stride, size in [(16, 16, 1, 8), (16, 32, 2, 8), (16, 16, 2, 8), (8, 24, 1, 6)]:
        what = f"MyResidualBlock({c_in}, {c_out}, stride={stride})"
        block = _call(what, MyResidualBlock, c_in, c_out, stride,
                      hint="__init__(self, in_channels, out_channels, stride=1) calls super().__init__() first")
        x = torch.randn(3, c_in, size, size, generator=g)
        out = _call(f"{what} on a [3, {c_in}, {size}, {size}] input", block, x,
                    hint="F(x) and the shortcut's output are added, so they must have the same shape: when the "
                         "channels or the stride change, what must the shortcut do?")
        check(tuple(out.shape), (3, c_out, size // stride, size // stride), f"{what}: output shape")
        reference = ResidualBlock(c_in, c_out, stride)
        check(count_parameters(block), count_parameters(reference), f"{what}: trainable parameters",
              hint="count with the description: which convolutions have a bias, and when does the shortcut "
                   "have parameters at all?")
        check(isinstance(getattr(block, "body", None), nn.Module)
              and isinstance(getattr(block, "shortcut", None), nn.Module), True,
              f"{what}: has self.body and self.shortcut", hint="build F as self.body and the shortcut as "
                                                               "self.shortcut, both modules")
        _randomise(block, g)
        _copy_into(reference, block, "body", what)
        _copy_into(reference, block, "shortcut", what)
        block.eval()
        reference.eval()
        x = torch.randn(3, c_in, size, size, generator=g)
        with torch.no_grad():
            got = _call(f"{what} in eval mode", block, x, hint="forward should work in train and eval mode")
            expected = reference(x)
        check(got, expected, f"{what}: its output matches a reference block holding your weights",
              reveal=False,
              hint="the block ends with a ReLU after the addition" if bool((got < 0).any()) else
              "compare with the description: which layer does F end with (can F(x) be negative?), which "
              "convolution has the stride, and where is the one ReLU outside F?")


# ------------------------------------------------------------------------------ Exercise 3
@exercise("Exercise 3")
def ex3(separable_macs):
    for c_in, c_out, k, size in [(32, 64, 3, 16), (128, 128, 3, 8), (16, 48, 5, 10), (3, 7, 3, 5)]:
        what = f"separable_macs({c_in}, {c_out}, k={k}, size={size})"
        got = _call(what, separable_macs, c_in, c_out, k, size, hint="compute the count from the four arguments")
        _is_int(got, what, "a count of multiply-accumulates is a whole number: keep to integer arithmetic")
        reference = nn.Sequential(nn.Conv2d(c_in, c_in, k, padding=k // 2, groups=c_in, bias=False),
                                  nn.Conv2d(c_in, c_out, 1, bias=False))
        expected = count_macs(reference, (c_in, size, size))
        pixels = size * size
        slips = {
            k * k * c_in * c_out * pixels: "that is a standard convolution's cost: a depthwise filter reads one "
                                           "channel only, and a pointwise part follows",
            k * k * c_in + c_in * c_out: "that is the cost of one output position: how many are there?",
            (k * k * c_in * c_in + c_in * c_out) * pixels: "a depthwise filter reads its own channel only, not all "
                                                           "of them",
            k * k * c_in * pixels: "the pointwise 1×1 convolution costs multiply-accumulates too",
            c_in * c_out * pixels: "the depthwise k×k convolution costs multiply-accumulates too",
        }
        check(got, expected, what, reveal=False,
              hint=_hint_for(got, slips, "cost the two convolutions separately: each output number costs one "
                                         "multiply-accumulate per input number it reads"))


# ------------------------------------------------------------------------------ Exercise 4
def _write_images(folder: Path) -> dict:
    """Five RGB .png files named <class>_<anything>.png, one greyscale one, and a text file."""
    g = torch.Generator().manual_seed(3)
    pixels = {}
    for name in ["dog_2.png", "cat_10.png", "bird_a.png", "cat_1.png", "dog_1.png"]:
        array = torch.randint(0, 256, (5, 6, 3), dtype=torch.uint8, generator=g)
        Image.fromarray(array.numpy()).save(folder / name)
        pixels[name] = array
    (folder / "notes.txt").write_text("not an image")
    Image.fromarray(pixels["cat_1.png"][:, :, 0].numpy()).save(folder / "cat_grey.png")   # a greyscale file
    return pixels


@exercise("Exercise 4")
def ex4(NamedImages):
    from torchvision import transforms

    classes = ["bird", "cat", "dog"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pixels = _write_images(folder)
        data = _call("NamedImages(folder, classes)", NamedImages, folder, classes,
                     hint="__init__(self, folder, classes, transform=None) lists the files once")
        check(_call("len(data)", len, data, hint="__len__ returns how many images there are"), 6,
              "6 images (the .txt file is ignored)", hint="keep only the .png files")
        order = sorted([*pixels, "cat_grey.png"])
        for i, name in enumerate(order):
            sample = _call(f"data[{i}]", data.__getitem__, i,
                           hint="__getitem__(i) returns (image, label); the class is the part of the file name "
                                "before the first '_'")
            if not (isinstance(sample, tuple) and len(sample) == 2):
                _fail(f"data[{i}] should be a pair (image, label), got {type(sample).__name__}",
                      "return image, label")
            image, label = sample
            check(label, classes.index(name.split("_")[0]), f"the label of sample {i} ({name})",
                  hint="samples come in the sorted order of the file names; the label is the index in `classes` "
                       "of the name's part before the first '_'")
            if name != "cat_grey.png":
                check(torch.from_numpy(np.array(image)), pixels[name], f"the pixels of sample {i} ({name})",
                      hint="open the file with PIL and return the image itself (or transform(image))")
        grey = np.asarray(data[order.index("cat_grey.png")][0])
        check(grey.shape, (5, 6, 3), "a greyscale file comes out as RGB",
              hint="some files have one channel: PIL can convert an image's mode")
        with_transform = _call("NamedImages(folder, classes, transform=transforms.ToTensor())", NamedImages,
                               folder, classes, transforms.ToTensor(), hint="keep the transform for __getitem__")
        image = _call("data[0] with a transform", with_transform.__getitem__, 0,
                      hint="apply the transform to the image")[0]
        check(isinstance(image, torch.Tensor), True, "the transform is applied (ToTensor: a tensor comes out)",
              hint="apply self.transform to the image when there is one")
        check(tuple(image.shape), (3, 5, 6), "the transformed image's shape")


# ------------------------------------------------------------------------------ Exercise 5
@exercise("Exercise 5")
def ex5(prepare_for_transfer, ex5):
    import torchvision

    for name, classes in [("resnet18", 7), ("resnet50", 3)]:
        model = getattr(torchvision.models, name)(weights=None)
        fc_in, everything = model.fc.in_features, count_parameters(model)
        old_head = count_parameters(model.fc)
        prepared = _call(f"prepare_for_transfer({name}, {classes})", prepare_for_transfer, model, classes,
                         hint="freeze, replace the head, return the model")
        check(isinstance(prepared, nn.Module), True, f"{name}: prepare_for_transfer returns the model",
              hint="end with return model")
        head = getattr(prepared, "fc", None)
        check(isinstance(head, nn.Linear) and (head.in_features, head.out_features), (fc_in, classes),
              f"{name}: fc is a new nn.Linear from the network's {fc_in} features to {classes} classes",
              hint="read the old layer's in_features instead of typing a number: networks differ")
        trainable = count_parameters(prepared)
        slips = {0: "nothing is trainable, not even the new head: mind the order of the two steps",
                 everything - old_head + fc_in * classes + classes:
                     "the old network is still trainable: eval() and no_grad() do not freeze parameters; "
                     "requires_grad does"}
        check(trainable, fc_in * classes + classes, f"{name}: only the new head is trainable", reveal=False,
              hint=_hint_for(trainable, slips, "freeze every parameter of the old network, and keep the new "
                                               "head's trainable"))
        out = _call(f"{name} prepared, on a [2, 3, 64, 64] batch", prepared, torch.zeros(2, 3, 64, 64),
                    hint="replace model.fc only; keep the rest of the network")
        check(tuple(out.shape), (2, classes), f"{name}: logits of shape (2, {classes})")
    _is_int(ex5, "ex5", "count_parameters gives an int")
    head = 512 * 5 + 5
    slips = {0: "no parameter trainable means the head was frozen too",
             512 * 5: "a Linear layer learns a bias per output, too",
             512 * 1000 + 1000: "that is ImageNet's old head: the new one has 5 outputs",
             count_parameters(torchvision.models.resnet18(num_classes=5)): "that counts the frozen parameters too"}
    check(ex5, head, "ex5: trainable parameters of ResNet-18 prepared for 5 classes", reveal=False,
          hint=_hint_for(ex5, slips, "run your function on a fresh ResNet-18 and count what is still trainable"))
