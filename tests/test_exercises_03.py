"""Lesson 03's exercise checks: the model answer passes, the wrong answers learners really
give fail (tests/exercise_harness.py). A check that let one through would teach the learner
that the wrong answer is right.
"""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from exercise_harness import exercise_tests
from torch import nn
from torch.utils.data import DataLoader, Dataset

from helpers.check import CheckFailed
from helpers.exercises import lesson03

X_RAW, Y = lesson03.line_data()


# ------------------------------------------------------------------------------ Exercise 1
def _normal_equations(dtype=torch.float64, columns=(0, 1)):
    X = torch.stack([X_RAW, torch.ones_like(X_RAW)], dim=1).to(dtype)[:, list(columns)]
    y = Y.to(dtype)
    return torch.linalg.solve(X.T @ X, X.T @ y)


THETA = _normal_equations().float()


# ------------------------------------------------------------------------------ Exercise 2
def _cross_entropy(logits, target, row_max=True, add_back=True, true_class=True, mean=True):
    """A hand-written cross-entropy and the slips learners make in it."""
    m = logits.max(dim=1, keepdim=True).values if row_max else logits.max()
    log_sum_exp = (logits - m).exp().sum(dim=1).log() + (m.squeeze(1) if row_max else m) * add_back
    picked = target if true_class else logits.argmax(dim=1)
    per_sample = log_sum_exp - logits[torch.arange(len(target)), picked]
    return per_sample.mean() if mean else per_sample


def _naive_cross_entropy(logits, target):
    return -torch.log(logits.exp() / logits.exp().sum(dim=1, keepdim=True))[torch.arange(len(target)), target].mean()


# ------------------------------------------------------------------------------ Exercise 3
_ZS = torch.tensor([-1.0, 0.5, 2.0, 4.0], requires_grad=True)
_YS = torch.tensor([0.0, 1.0, 1.0, 0.0])


def _autograd_grad(reduction="mean", twice=False):
    zs = _ZS.detach().clone().requires_grad_()
    for _ in range(2 if twice else 1):
        F.binary_cross_entropy_with_logits(zs, _YS, reduction=reduction).backward()
    return zs.grad


def _mean_bce_grad(z, y):
    return (torch.sigmoid(z) - y) / len(z)


# ------------------------------------------------------------------------------ Exercise 4
def _kl(p, q):
    keep = p > 0
    return (p[keep] * (p[keep] / q[keep]).log()).sum()


def _entropy_from_logits(logits):
    log_p = F.log_softmax(logits, dim=0)
    return -(log_p.exp() * log_p).sum()


# ------------------------------------------------------------------------------ Exercise 5
def _squares_class(x_of=lambda i, n: torch.tensor([i / n]), target=lambda x: x ** 2, fixed_len=None):
    class SquaresDataset(Dataset):
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return fixed_len or self.n

        def __getitem__(self, i):
            x = x_of(i, self.n)
            return x, target(x)
    return SquaresDataset


class _NotADataset:                                   # len and indexing, but no Dataset
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x = torch.tensor([i / self.n])
        return x, x ** 2


_SQUARES = _squares_class()


# ------------------------------------------------------------------------------ Exercise 7
def _raw_losses(lr=0.01, seed=0, inputs=None, targets=None, zero_grad=True, after_step=False, steps=100):
    """Exercise 7's run, and the slips learners make in it."""
    inputs = X_RAW[:, None] if inputs is None else inputs
    targets = Y[:, None] if targets is None else targets
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.mse_loss(model(inputs), targets)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(F.mse_loss(model(inputs), targets).item() if after_step else loss.item())
    return losses


_X = torch.stack([X_RAW, torch.ones_like(X_RAW)], dim=1).double()
_CURVATURES = torch.linalg.eigvalsh(2 / len(X_RAW) * _X.T @ _X).tolist()
GROWTH = (1 - 0.01 * _CURVATURES[1]) ** 2
LOSSES = _raw_losses()
_Z = ((X_RAW - X_RAW.mean()) / X_RAW.std())[:, None]
with warnings.catch_warnings():                      # the mistake's own warning: "Using a target size ..."
    warnings.simplefilter("ignore", UserWarning)
    _BROADCAST = _raw_losses(targets=Y)


LESSON03 = {
    lesson03.ex1: ((THETA,), {
        "the numbers copied from section 1's printout": (torch.tensor([1.322, 7.991]),),
        "solved in float32 (this machine's float32 answer)": (torch.tensor([1.3224288, 7.9911242]),),
        "(b, w): the columns in the wrong order": (THETA.flip(0),),
        "left as float64": (_normal_equations(),),
        "a [2, 1] column": (THETA[:, None],),
        "a list": (THETA.tolist(),),
        "forgot the column of ones (no intercept)": (torch.tensor([(X_RAW @ Y / (X_RAW @ X_RAW)).item(), 0.0]),),
    }),
    lesson03.ex2: ((_cross_entropy,), {
        "calls F.cross_entropy after all": (lambda logits, target: F.cross_entropy(logits, target),),
        "takes the log of a softmax (no log-sum-exp)": (_naive_cross_entropy,),
        "subtracts the max of the whole batch, not of each row": (lambda o, t: _cross_entropy(o, t, row_max=False),),
        "forgets to add the max back": (lambda o, t: _cross_entropy(o, t, add_back=False),),
        "uses the predicted class instead of the true one": (lambda o, t: _cross_entropy(o, t, true_class=False),),
        "returns the per-sample losses": (lambda o, t: _cross_entropy(o, t, mean=False),),
        "returns a Python float": (lambda o, t: _cross_entropy(o, t).item(),),
        "the sum instead of the mean": (lambda o, t: _cross_entropy(o, t, mean=False).sum(),),
    }),
    lesson03.ex3: ((_autograd_grad(), _mean_bce_grad), {
        "reduction='sum'": (_autograd_grad("sum"), _mean_bce_grad),
        "backward() twice without resetting .grad": (_autograd_grad(twice=True), _mean_bce_grad),
        "the formula without / n (section 4's per-sample p − y)": (_autograd_grad(), lambda z, y: torch.sigmoid(z) - y),
        "the sign turned round: (y − p) / n": (_autograd_grad(), lambda z, y: (y - torch.sigmoid(z)) / len(z)),
        "σ'(z) = p(1 − p) instead of p − y": (_autograd_grad(),
                                              lambda z, y: torch.sigmoid(z) * (1 - torch.sigmoid(z)) / len(z)),
        "divides by a fixed 4, the size of zs": (_autograd_grad(), lambda z, y: (torch.sigmoid(z) - y) / 4),
        "the formula typed in for (a), no autograd, without / n": ((torch.sigmoid(_ZS) - _YS).detach(), _mean_bce_grad),
    }),
    lesson03.ex4: ((_kl, _entropy_from_logits), {
        "KL the wrong way round, KL(q ‖ p)": (lambda p, q: _kl(q, p), _entropy_from_logits),
        "KL without skipping p = 0 (0 · ln 0 = nan)": (lambda p, q: (p * (p / q).log()).sum(), _entropy_from_logits),
        "KL in bits (log2)": (lambda p, q: _kl(p, q) / math.log(2), _entropy_from_logits),
        "KL weighted by q: Σ q ln(p / q)": (lambda p, q: (q * (p / q).log()).sum(), _entropy_from_logits),
        "entropy as −Σ p ln p of a softmax that underflowed (nan)":
            (_kl, lambda o: -(o.softmax(0) * o.softmax(0).log()).sum()),
        "entropy without the minus sign": (_kl, lambda o: -_entropy_from_logits(o)),
        "entropy in bits": (_kl, lambda o: _entropy_from_logits(o) / math.log(2)),
        "entropy of the logits themselves, not of their softmax": (_kl, lambda o: -(o * o.clamp_min(1e-12).log()).sum()),
        "ln K, the uniform case, for every input": (_kl, lambda o: torch.tensor(math.log(len(o)))),
    }),
    lesson03.ex5: ((_SQUARES(1000), 31), {
        "no drop_last: 32 batches": (_SQUARES(1000), 32),
        "1000 / 32 = 31.25": (_SQUARES(1000), 1000 / 32),
        "a float 31.0": (_SQUARES(1000), 31.0),
        "x = i, not i / n": (_squares_class(x_of=lambda i, n: torch.tensor([float(i)]))(1000), 31),
        "target 2x instead of x²": (_squares_class(target=lambda x: 2 * x)(1000), 31),
        "a length fixed at 1000": (_squares_class(fixed_len=1000)(1000), 31),
        "x as a 0-d tensor (batches of shape [32])": (_squares_class(x_of=lambda i, n: torch.tensor(i / n))(1000), 31),
        "x as a Python float": (_squares_class(x_of=lambda i, n: i / n)(1000), 31),
        "not a Dataset subclass": (_NotADataset(1000), 31),
    }),
    lesson03.ex6: ((lambda o, y: (o.argmax(dim=1) == y).float().mean().item(),), {
        "argmax over dim=0": (lambda o, y: (o.argmax(dim=0) == y).float().mean().item(),),
        "returns a tensor (no .item())": (lambda o, y: (o.argmax(dim=1) == y).float().mean(),),
        "counts instead of a fraction": (lambda o, y: (o.argmax(dim=1) == y).sum().item(),),
        "compares with the max logit, not its position": (lambda o, y: (o.max(dim=1).values == y).float().mean().item(),),
        "always 3/4, the batch above": (lambda o, y: 0.75,),
    }),
    lesson03.ex7: ((LOSSES, GROWTH), {
        "a typed-in nan for every step": ([math.nan] * 100, GROWTH),
        "learning rate 0.1": (_raw_losses(lr=0.1), GROWTH),
        "learning rate 0.001 (diverges too)": (_raw_losses(lr=0.001), GROWTH),
        "the standardised Z instead of the raw x": (_raw_losses(inputs=_Z), GROWTH),
        "y of shape [100] against [100, 1] outputs (broadcasts)": (_BROADCAST, GROWTH),
        "no torch.manual_seed(0)": (_raw_losses(seed=1), GROWTH),
        "no zero_grad()": (_raw_losses(zero_grad=False), GROWTH),
        "the loss recorded after each step": (_raw_losses(after_step=True), GROWTH),
        "99 steps": (LOSSES[:99], GROWTH),
        "tensors, not floats": ([torch.tensor(v) for v in LOSSES], GROWTH),
        "growth not squared: 1 − ηλ": (LOSSES, abs(1 - 0.01 * _CURVATURES[1])),
        "growth from the smallest curvature": (LOSSES, (1 - 0.01 * _CURVATURES[0]) ** 2),
        "growth as (ηλ)², without the 1 −": (LOSSES, (0.01 * _CURVATURES[1]) ** 2),
        "growth as a tensor": (LOSSES, torch.tensor(GROWTH)),
    }),
}

test_model_answers, test_wrong_answers = exercise_tests(LESSON03)


def test_line_data_is_section_1s_data():
    assert X_RAW.shape == Y.shape == (100,)
    assert 25 < X_RAW.min() and X_RAW.max() < 71


def test_exercise_2_refuses_the_library_inside_a_wrapper():
    """A learner's function that reaches the library through nn.CrossEntropyLoss is refused too."""
    with pytest.raises(CheckFailed, match="cross_entropy"):
        lesson03.ex2(lambda logits, target: nn.CrossEntropyLoss()(logits, target))


def test_exercise_7_leaves_the_learners_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    lesson03.ex7(LOSSES, GROWTH)
    assert torch.equal(torch.rand(3), expected)


def test_exercise_5_n_batches_really_is_31():
    assert len(DataLoader(_SQUARES(1000), batch_size=32, drop_last=True)) == 31
