"""Lesson 07's exercise checks: the model answer passes, the wrong answers learners really
give fail (tests/exercise_harness.py). A check that let one through would teach the learner
that the wrong answer is right.
"""
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from exercise_harness import exercise_tests
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from helpers.exercises import lesson07
from helpers.models import count_parameters

# ------------------------------------------------------------------------------ Exercise 1
VGG_BLOCK = (256 * 128 * 9 + 2 * 256) + (256 * 256 * 9 + 2 * 256) + (256 * 256 * 9 + 2 * 256)


# ------------------------------------------------------------------------------ Exercise 2
def residual_block(body_relu=False, relu_each=False, final_relu=True, stride_in_second=False,
                   projection="shape", shortcut_bn=True, bias=False, no_shortcut=False):
    """A MyResidualBlock, right by default, with the slips learners make switched on by name."""

    class Block(nn.Module):
        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__()
            first, second = (1, stride) if stride_in_second else (stride, 1)
            layers = [nn.Conv2d(in_channels, out_channels, 3, first, 1, bias=bias), nn.BatchNorm2d(out_channels),
                      nn.ReLU(), nn.Conv2d(out_channels, out_channels, 3, second, 1, bias=bias),
                      nn.BatchNorm2d(out_channels)]
            self.body = nn.Sequential(*layers, *([nn.ReLU()] if body_relu else []))
            needs = {"shape": stride != 1 or in_channels != out_channels, "channels": in_channels != out_channels,
                     "always": True}[projection]
            self.shortcut = nn.Identity()
            if needs:
                self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                              *([nn.BatchNorm2d(out_channels)] if shortcut_bn else []))

        def forward(self, x):
            if no_shortcut:
                return F.relu(self.body(x))
            if relu_each:
                return F.relu(self.body(x)) + F.relu(self.shortcut(x))
            out = self.body(x) + self.shortcut(x)
            return F.relu(out) if final_relu else out

    return Block


class ShortcutBNFirst(nn.Module):
    """The projection's BN before its 1×1 convolution."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.body = residual_block()(in_channels, out_channels, stride).body
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.BatchNorm2d(in_channels),
                                          nn.Conv2d(in_channels, out_channels, 1, stride, bias=False))

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


# ------------------------------------------------------------------------------ Exercise 3
def separable(c_in, c_out, k, size):
    return (k * k * c_in + c_in * c_out) * size * size


# ------------------------------------------------------------------------------ Exercise 4
def named_images(sort=sorted, suffix=".png", convert=True, part=0, use_transform=True, label_as_name=False):
    """A NamedImages, right by default, with the slips learners make switched on by name."""

    class NamedImages(Dataset):
        def __init__(self, folder, classes, transform=None):
            self.paths = sort(p for p in Path(folder).iterdir() if suffix is None or p.suffix == suffix)
            self.classes, self.transform = list(classes), transform

        def __len__(self):
            return len(self.paths)

        def __getitem__(self, i):
            path = self.paths[i]
            image = Image.open(path)
            image = image.convert("RGB") if convert else image
            name = path.name.split("_")[part]
            label = name if label_as_name else self.classes.index(name)
            return (self.transform(image) if self.transform and use_transform else image), label

    return NamedImages


# ------------------------------------------------------------------------------ Exercise 5
def prepare(model, num_classes):
    model.requires_grad_(False)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def replace_then_freeze(model, num_classes):
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    model.requires_grad_(False)
    return model


def no_freezing(model, num_classes):
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def eval_instead_of_freezing(model, num_classes):
    model.eval()
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def typed_in_512(model, num_classes):
    model.requires_grad_(False)
    model.fc = nn.Linear(512, num_classes)
    return model


def forgets_return(model, num_classes):
    model.requires_grad_(False)
    model.fc = nn.Linear(model.fc.in_features, num_classes)


def freezes_only_the_old_head(model, num_classes):
    model.fc.requires_grad_(False)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


RESNET18_5 = 512 * 5 + 5

LESSON07 = {
    lesson07.ex1: ((VGG_BLOCK,), {
        "gives each conv a bias": (VGG_BLOCK + 3 * 256,),
        "counts BatchNorm's running statistics": (VGG_BLOCK + 3 * 2 * 256,),
        "leaves BatchNorm out": (VGG_BLOCK - 3 * 2 * 256,),
        "every conv from 128 channels": (3 * (256 * 128 * 9 + 2 * 256),),
        "every conv from 256 channels": (3 * (256 * 256 * 9 + 2 * 256),),
        "section 2's block (64 -> 128, two convs)": ((128 * 64 * 9 + 2 * 128) + (128 * 128 * 9 + 2 * 128),),
        "forgets the kernel's 3x3": ((256 * 128 + 2 * 256) + 2 * (256 * 256 + 2 * 256),),
        "a float": (float(VGG_BLOCK),),
    }),
    lesson07.ex2: ((residual_block(),), {
        "body ends in ReLU, then relu(F(x)) + relu(shortcut(x)) (the old check let it pass)":
            (residual_block(body_relu=True, relu_each=True),),
        "body ends in ReLU (ReLU before the addition)": (residual_block(body_relu=True),),
        "relu(F(x)) + relu(shortcut(x))": (residual_block(relu_each=True),),
        "no ReLU after the addition": (residual_block(final_relu=False),),
        "the stride in the second convolution": (residual_block(stride_in_second=True),),
        "a projection only when the channels change": (residual_block(projection="channels"),),
        "a projection always": (residual_block(projection="always"),),
        "a projection without BN": (residual_block(shortcut_bn=False),),
        "convolutions with bias": (residual_block(bias=True),),
        "no shortcut at all": (residual_block(no_shortcut=True),),
        "the projection's BN before its conv": (ShortcutBNFirst,),
    }),
    lesson07.ex3: ((separable,), {
        "a standard convolution's MACs": (lambda c_in, c_out, k, size: k * k * c_in * c_out * size * size,),
        "per output position only": (lambda c_in, c_out, k, size: k * k * c_in + c_in * c_out,),
        "depthwise reads every channel":
            (lambda c_in, c_out, k, size: (k * k * c_in * c_in + c_in * c_out) * size ** 2,),
        "forgets the pointwise part": (lambda c_in, c_out, k, size: k * k * c_in * size * size,),
        "forgets the depthwise part": (lambda c_in, c_out, k, size: c_in * c_out * size * size,),
        "k instead of k²": (lambda c_in, c_out, k, size: (k * c_in + c_in * c_out) * size * size,),
        "a float (size ** 2.0)": (lambda c_in, c_out, k, size: (k * k * c_in + c_in * c_out) * size ** 2.0,),
        "the ratio instead of a count": (lambda c_in, c_out, k, size: 1 / c_out + 1 / k ** 2,),
    }),
    lesson07.ex4: ((named_images(),), {
        "sorted in reverse": (named_images(sort=lambda paths: sorted(paths, reverse=True)),),
        "every file, the .txt too": (named_images(suffix=None),),
        "no RGB conversion": (named_images(convert=False),),
        "the label from the part after the '_'": (named_images(part=1),),
        "the class name as the label": (named_images(label_as_name=True),),
        "ignores the transform": (named_images(use_transform=False),),
    }),
    lesson07.ex5: ((prepare, RESNET18_5), {
        "replaces the head, then freezes (head frozen too)": (replace_then_freeze, RESNET18_5),
        "freezes nothing": (no_freezing, RESNET18_5),
        "eval() instead of freezing": (eval_instead_of_freezing, RESNET18_5),
        "a typed-in 512 inputs (ResNet-50 has 2 048)": (typed_in_512, RESNET18_5),
        "forgets to return the model": (forgets_return, RESNET18_5),
        "freezes only the old head": (freezes_only_the_old_head, RESNET18_5),
        "ex5 without the biases": (prepare, 512 * 5),
        "ex5 the old ImageNet head": (prepare, 512 * 1000 + 1000),
        "ex5 counts the frozen parameters too": (prepare, count_parameters(torchvision.models.resnet18(num_classes=5))),
        "ex5 zero": (prepare, 0),
        "ex5 a float": (prepare, float(RESNET18_5)),
        "ex5 a tensor": (prepare, torch.tensor(RESNET18_5)),
    }),
}

test_model_answers, test_wrong_answers = exercise_tests(LESSON07)
