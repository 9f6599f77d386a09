"""Lesson 08's exercise checks: the model answer passes, the wrong answers learners really
give fail (tests/exercise_harness.py). A check that let one through would teach the learner
that the wrong answer is right.
"""
from pathlib import Path

import torch
import torchvision
from exercise_harness import exercise_tests
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from helpers.exercises import lesson08
from helpers.models import count_parameters

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


# ------------------------------------------------------------------------------ Exercise 1
def named_images(keep=None, classes_in="sorted", order=sorted, convert=True, part=0, use_transform=True):
    """A NamedImages, right by default, with the slips learners make switched on by name."""
    keep = keep or (lambda p: p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)

    class NamedImages(Dataset):
        def __init__(self, folder, transform=None):
            self.paths = order(p for p in Path(folder).iterdir() if keep(p))
            names = [p.name.split("_")[part] for p in self.paths]
            self.classes = sorted(set(names)) if classes_in == "sorted" else names
            self.transform = transform

        def __len__(self):
            return len(self.paths)

        def __getitem__(self, i):
            path = self.paths[i]
            image = Image.open(path)
            image = image.convert("RGB") if convert else image
            label = self.classes.index(path.name.split("_")[part])
            return (self.transform(image) if self.transform and use_transform else image), label

    return NamedImages


# ------------------------------------------------------------------------------ Exercise 2
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


def appends_a_layer(model, num_classes):
    """Note 002's first edit: a new layer after the old 1000-way head."""
    model.requires_grad_(False)
    model.fc = nn.Sequential(model.fc, nn.Linear(model.fc.out_features, num_classes))
    return model


RESNET18_5 = 512 * 5 + 5


# ------------------------------------------------------------------------------ Exercise 3
def groups(model, lr):
    head = list(model.fc.parameters())
    ids = {id(p) for p in head}
    return [{"params": [p for p in model.parameters() if id(p) not in ids], "lr": lr},
            {"params": head, "lr": 10 * lr}]


def head_in_both(model, lr):
    return [{"params": model.parameters(), "lr": lr}, {"params": model.fc.parameters(), "lr": 10 * lr}]


def ten_times_on_the_backbone(model, lr):
    head = {id(p) for p in model.fc.parameters()}
    return [{"params": [p for p in model.parameters() if id(p) not in head], "lr": 10 * lr},
            {"params": model.fc.parameters(), "lr": lr}]


def a_tenth_on_the_head(model, lr):
    head = {id(p) for p in model.fc.parameters()}
    return [{"params": [p for p in model.parameters() if id(p) not in head], "lr": lr},
            {"params": model.fc.parameters(), "lr": lr / 10}]


def only_the_head(model, lr):
    return [{"params": model.fc.parameters(), "lr": 10 * lr}]


def backbone_without_lr(model, lr):
    head = {id(p) for p in model.fc.parameters()}
    return [{"params": [p for p in model.parameters() if id(p) not in head]},
            {"params": model.fc.parameters(), "lr": 10 * lr}]


def only_the_head_weight(model, lr):
    """Picks the head by name, 'fc.weight', and forgets its bias: the bias sits in no group."""
    return [{"params": [p for n, p in model.named_parameters() if not n.startswith("fc.")], "lr": lr},
            {"params": [model.fc.weight], "lr": 10 * lr}]


def ten_times_everything(model, lr):
    return [{"params": model.parameters(), "lr": 10 * lr}]


def one_group(model, lr):
    return {"params": model.parameters(), "lr": lr}


# ------------------------------------------------------------------------------ Exercise 4
def predictor(evaluate=True, softmax=True, batch=True, rgb=True, as_float=True, index=False, no_grad=True):
    """A predict_photo, right by default, with the slips learners make switched on by name."""

    def predict_photo(model, path, preprocess, classes):
        if evaluate:
            model.eval()
        image = Image.open(path)
        x = preprocess(image.convert("RGB") if rgb else image)
        x = x.unsqueeze(0) if batch else x
        with torch.inference_mode(no_grad):
            logits = model(x)
        scores = torch.softmax(logits, dim=1)[0] if softmax else logits[0]
        p, i = scores.max(dim=0)
        return (int(i) if index else classes[int(i)]), (float(p) if as_float else p)

    return predict_photo


LESSON08 = {
    lesson08.ex1: ((named_images(),), {
        "every file, the note too": (named_images(keep=lambda p: p.is_file()),),
        "the hidden ._ file too": (named_images(keep=lambda p: p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),),
        "only lower-case .png and .jpg": (named_images(keep=lambda p: p.suffix in (".png", ".jpg")
                                                       and not p.name.startswith(".")),),
        "only .png files": (named_images(keep=lambda p: p.suffix.lower() == ".png" and not p.name.startswith(".")),),
        "one class per file (names not made unique)": (named_images(classes_in="per file"),),
        "files in reverse order": (named_images(order=lambda paths: sorted(paths, reverse=True)),),
        "no RGB conversion": (named_images(convert=False),),
        "the label from the part after the '_'": (named_images(part=-1),),
        "ignores the transform": (named_images(use_transform=False),),
    }),
    lesson08.ex2: ((prepare, RESNET18_5), {
        "replaces the head, then freezes (head frozen too)": (replace_then_freeze, RESNET18_5),
        "freezes nothing": (no_freezing, RESNET18_5),
        "eval() instead of freezing": (eval_instead_of_freezing, RESNET18_5),
        "a typed-in 512 inputs (ResNet-50 has 2 048)": (typed_in_512, RESNET18_5),
        "forgets to return the model": (forgets_return, RESNET18_5),
        "freezes only the old head": (freezes_only_the_old_head, RESNET18_5),
        "a layer after the old 1000-way head (note 002's add_module)": (appends_a_layer, RESNET18_5),
        "ex2 without the biases": (prepare, 512 * 5),
        "ex2 the old ImageNet head": (prepare, 512 * 1000 + 1000),
        "ex2 counts the frozen parameters too": (prepare, count_parameters(torchvision.models.resnet18(num_classes=5))),
        "ex2 zero": (prepare, 0),
        "ex2 a float": (prepare, float(RESNET18_5)),
        "ex2 a tensor": (prepare, torch.tensor(RESNET18_5)),
    }),
    lesson08.ex3: ((groups,), {
        "the head in both groups": (head_in_both,),
        "10x on the backbone instead": (ten_times_on_the_backbone,),
        "a tenth on the head": (a_tenth_on_the_head,),
        "only the head (the backbone never trains)": (only_the_head,),
        "the backbone's group without an lr": (backbone_without_lr,),
        "the head's bias in no group": (only_the_head_weight,),
        "10x on everything": (ten_times_everything,),
        "one dict, not a list": (one_group,),
    }),
    lesson08.ex4: ((predictor(),), {
        "forgets eval()": (predictor(evaluate=False),),
        "forgets eval(), under no_grad": (predictor(evaluate=False, no_grad=True),),
        "returns the logit, not a probability": (predictor(softmax=False),),
        "forgets the batch dimension": (predictor(batch=False),),
        "does not convert to RGB": (predictor(rgb=False),),
        "returns the probability as a tensor": (predictor(as_float=False),),
        "returns the index, not the class name": (predictor(index=True),),
    }),
}

test_model_answers, test_wrong_answers = exercise_tests(LESSON08)
