"""Lesson 04's exercise checks: the model answer passes, the wrong answers learners really
give fail (tests/exercise_harness.py). A check that let one through would teach the learner
that the wrong answer is right.
"""
import torch
import torch.nn.functional as F
from exercise_harness import exercise_tests
from torch import nn

from helpers.exercises import lesson04


# ------------------------------------------------------------------ Exercise 1: merge two layers
def _merged(weight, bias, n_in, n_out):
    layer = nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


def merge_linear(l1, l2):
    return _merged(l2.weight @ l1.weight, l2.weight @ l1.bias + l2.bias, l1.in_features, l2.out_features)


def merge_forgets_first_bias(l1, l2):
    return _merged(l2.weight @ l1.weight, l2.bias, l1.in_features, l2.out_features)


def merge_adds_biases(l1, l2):
    return _merged(l2.weight @ l1.weight, l1.bias + l2.bias, l1.in_features, l2.out_features)


def merge_weights_wrong_way_round(l1, l2):
    return _merged(l1.weight.T @ l2.weight.T, l2.weight @ l1.bias + l2.bias, l1.in_features, l2.out_features)


def merge_without_bias(l1, l2):
    layer = nn.Linear(l1.in_features, l2.out_features, bias=False)
    with torch.no_grad():
        layer.weight.copy_(l2.weight @ l1.weight)
    return layer


def merge_keeps_fresh_weights(l1, l2):
    return nn.Linear(l1.in_features, l2.out_features)


def merge_as_sequential(l1, l2):
    return nn.Sequential(l1, l2)


# ---------------------------------------------------------- Exercise 2: cross-entropy's gradient
def _one_hot(Z, y):
    return F.one_hot(y, Z.shape[1]).to(Z.dtype)


def ce_grad(Z, y):
    return (torch.softmax(Z, dim=1) - _one_hot(Z, y)) / Z.shape[0]


def ce_grad_by_autograd(Z, y):
    Z = Z.clone().requires_grad_()
    return torch.autograd.grad(F.cross_entropy(Z, y), Z)[0]


def ce_grad_by_backward(Z, y):
    Z = Z.clone().requires_grad_()
    F.cross_entropy(Z, y).backward()
    return Z.grad


# ------------------------------------------------------------------------ Exercise 4: Scale
class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(1.0))

    def forward(self, x):
        return self.alpha * x


class ScalePlainTensor(nn.Module):
    def __init__(self):
        super().__init__()
        self.alpha = torch.tensor(1.0, requires_grad=True)

    def forward(self, x):
        return self.alpha * x


class ScaleItem(Scale):
    def forward(self, x):
        return self.alpha.item() * x


class ScaleDetached(Scale):
    def forward(self, x):
        return self.alpha.detach() * x


class ScaleIgnoresAlpha(Scale):
    def forward(self, x):
        return x


class ScaleStartsAtZero(Scale):
    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(0.0))


class ScaleIntParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(1))

    def forward(self, x):
        return self.alpha * x


class ScalePerFeature(Scale):
    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(2))


class ScaleWithBias(Scale):
    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(0.0))

    def forward(self, x):
        return self.alpha * x + self.bias


# ---------------------------------------------------------------- Exercise 6: dead units
def count_dead(h):
    return int((h == 0).all(dim=0).sum())


THETA0, G1, G2, LR, MU = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.5]), torch.tensor([-1.0, 2.0]), 0.1, 0.9
THETA1 = THETA0 - LR * G1
THETA2 = THETA1 - LR * (MU * G1 + G2)

SIZES = [784, 512, 256, 10]
N_PARAMS = sum(i * o + o for i, o in zip(SIZES[:-1], SIZES[1:]))

LESSON04 = {
    lesson04.ex1: ((merge_linear,), {
        "forgets the first layer's bias": (merge_forgets_first_bias,),
        "adds the two biases (b1 + b2)": (merge_adds_biases,),
        "multiplies the weights the wrong way round": (merge_weights_wrong_way_round,),
        "a merged layer without a bias": (merge_without_bias,),
        "a new layer whose weights were never set": (merge_keeps_fresh_weights,),
        "returns nn.Sequential(l1, l2)": (merge_as_sequential,),
    }),
    lesson04.ex2: ((ce_grad,), {
        "forgets the 1/N of the mean": (lambda Z, y: torch.softmax(Z, dim=1) - _one_hot(Z, y),),
        "softmax over the batch (dim=0)": (lambda Z, y: (torch.softmax(Z, dim=0) - _one_hot(Z, y)) / Z.shape[0],),
        "the sign turned round": (lambda Z, y: (_one_hot(Z, y) - torch.softmax(Z, dim=1)) / Z.shape[0],),
        "forgets the one-hot term": (lambda Z, y: torch.softmax(Z, dim=1) / Z.shape[0],),
        "divides by N·C (a mean over every number)": (lambda Z, y: ce_grad(Z, y) / Z.shape[1],),
        "asks autograd after all": (ce_grad_by_autograd,),
        "calls backward() after all": (ce_grad_by_backward,),
        "one_hot without the number of classes": (
            lambda Z, y: (torch.softmax(Z, dim=1) - F.one_hot(y).to(Z.dtype)) / Z.shape[0],),
    }),
    lesson04.ex3: ((784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10,), {
        "counts the weights only": (784 * 512 + 512 * 256 + 256 * 10,),
        "counts in biases instead of out": (784 * 512 + 784 + 512 * 256 + 512 + 256 * 10 + 256,),
        "forgets the output layer": (784 * 512 + 512 + 512 * 256 + 256,),
        "a float": (float(N_PARAMS),),
        "a tensor": (torch.tensor(N_PARAMS),),
        "the parameter tensors printed in section 10": (6,),
        "TwoLayerNet's count printed in section 8": (101770,),
    }),
    lesson04.ex4: ((Scale,), {
        "alpha a plain tensor, not an nn.Parameter": (ScalePlainTensor,),
        "forward uses alpha.item()": (ScaleItem,),
        "forward uses alpha.detach()": (ScaleDetached,),
        "forward ignores alpha": (ScaleIgnoresAlpha,),
        "alpha starts at 0": (ScaleStartsAtZero,),
        "an integer tensor for alpha": (ScaleIntParameter,),
        "one alpha per feature": (ScalePerFeature,),
        "an extra bias parameter": (ScaleWithBias,),
    }),
    lesson04.ex5: ((THETA2,), {
        "plain SGD, no momentum": (THETA0 - LR * (G1 + G2),),
        "one step only": (THETA1,),
        "momentum with dampening (1 − μ)·g": (THETA1 - LR * (MU * G1 + (1 - MU) * G2),),
        "Nesterov's steps": (THETA0 - LR * (1 + MU) * G1 - LR * (G2 + MU * (MU * G1 + G2)),),
        "the momentum term the wrong sign": (THETA1 - LR * (G2 - MU * G1),),
        "steps uphill": (THETA0 + LR * G1 + LR * (MU * G1 + G2),),
        "μ and η swapped": (THETA0 - MU * G1 - MU * (LR * G1 + G2),),
        "a list, not a tensor": (THETA2.tolist(),),
    }),
    lesson04.ex6: ((count_dead,), {
        "counts the rows (inputs), not the columns": (lambda h: int((h == 0).all(dim=1).sum()),),
        "counts units with any zero": (lambda h: int((h == 0).any(dim=0).sum()),),
        "counts zero entries": (lambda h: int((h == 0).sum()),),
        "returns a tensor": (lambda h: (h == 0).all(dim=0).sum(),),
        "returns the fraction": (lambda h: (h == 0).all(dim=0).float().mean().item(),),
        "the answer to the small example, typed in": (lambda h: 2,),
        "a boolean mask instead of a count": (lambda h: (h == 0).all(dim=0),),
    }),
}

test_model_answers, test_wrong_answers = exercise_tests(LESSON04)
