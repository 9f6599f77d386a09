"""The checks of lesson 03's exercises (linear, logistic and softmax regression).

``line_data()`` gives section 1's 100 points to the exercises that need them, so that each
exercise (and its check) works right after the set-up cell.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..check import check, exercise, forbidding
from ..config import data_mirror, data_root


def line_data() -> tuple[torch.Tensor, torch.Tensor]:
    """Section 1's data, ``(x_raw [100], y [100])``: linreg/data.csv from data/ or the offline
    mirror, else the same generated stand-in that section 1 uses (y = 1.3x + 8 + noise)."""
    for base in (data_root(), data_mirror()):
        if base is not None and (base / "linreg/data.csv").is_file():
            rows = [line.split(",") for line in (base / "linreg/data.csv").read_text().split()]
            table = torch.tensor([[float(a), float(b)] for a, b in rows])       # [100, 2]
            return table[:, 0], table[:, 1]
    g = torch.Generator().manual_seed(0)
    xs = 25 + 45 * torch.rand(100, generator=g)
    return xs, 1.3 * xs + 8 + 10 * torch.randn(100, generator=g)


def _line_hessian(x: torch.Tensor) -> torch.Tensor:
    """2/n XᵀX with X = [x, 1], in float64: the Hessian of the MSE of a line."""
    X = torch.stack([x, torch.ones_like(x)], dim=1).double()
    return 2 / len(x) * X.T @ X


@exercise("Exercise 1")
def ex1(theta_ne):
    x, y = line_data()
    xd, yd = x.double(), y.double()
    # The least-squares line without the normal equations: w = cov(x, y) / var(x), b = ȳ − w·x̄.
    w = ((xd - xd.mean()) * (yd - yd.mean())).sum() / ((xd - xd.mean()) ** 2).sum()
    expected = torch.stack([w, yd.mean() - w * xd.mean()]).float()
    check(isinstance(theta_ne, torch.Tensor), True, "θ is a tensor", hint="torch.linalg.solve returns one")
    check(tuple(theta_ne.shape), (2,), "θ has shape [2]",
          hint="solve with the vector Xᵀy (shape [2]); a [2, 1] result needs .squeeze(1)")
    check(theta_ne.dtype, torch.float32, "θ is float32", hint="solve in float64, then convert the result with .float()")
    check(theta_ne, expected, "θ = (w, b) from the normal equations", atol=1e-6, rtol=1e-6, reveal=False,
          hint="X's columns are [x, 1], so θ is (w, b) in that order. Forming XᵀX squares X's condition "
               "number: which precision keeps enough digits?")


@exercise("Exercise 2")
def ex2(my_cross_entropy):
    g = torch.Generator().manual_seed(2)
    logits, target = torch.randn(8, 5, generator=g), torch.randint(0, 5, (8,), generator=g)
    huge = torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 999.0], [-1000.0, -1001.0, -1002.0]])
    huge_target = torch.tensor([2, 2, 0])
    expected, expected_huge = F.cross_entropy(logits, target), F.cross_entropy(huge, huge_target)
    library = ("torch.nn.functional.cross_entropy", "torch.nn.functional.log_softmax", "torch.nn.functional.nll_loss",
               "torch.log_softmax", "torch.Tensor.log_softmax", "torch.logsumexp", "torch.Tensor.logsumexp")
    with forbidding(library, "my_cross_entropy", "build it from max, exp, sum and log"):
        loss = my_cross_entropy(logits, target)
        loss_huge = my_cross_entropy(huge, huge_target)
    check(isinstance(loss, torch.Tensor), True, "the loss is a tensor", hint="keep it a tensor: no .item()")
    check(tuple(loss.shape), (), "one number for the whole batch (a 0-d tensor)",
          hint="the per-sample losses still need to become one number")
    check(loss, expected, "random logits", reveal=False,
          hint="per sample ln Σ_j exp(o_j) − o_c, where c is the TRUE class, then the mean over the batch")
    check(loss_huge, expected_huge, "logits of ±1000", reveal=False,
          hint="exp(1000) overflows: subtract a maximum before exp and add it back after the log, one per row, "
               "so that each row's largest term is exp(0) = 1")


@exercise("Exercise 3")
def ex3(bce_grad, mean_bce_grad):
    zs = torch.tensor([-1.0, 0.5, 2.0, 4.0], requires_grad=True)   # the exercise's zs and ys
    ys = torch.tensor([0.0, 1.0, 1.0, 0.0])
    (expected,) = torch.autograd.grad(F.binary_cross_entropy_with_logits(zs, ys), zs)
    check(bce_grad, expected, "autograd's gradient of the mean BCE at zs", reveal=False,
          hint="the mean, not the sum (keep the default reduction); and a second backward() adds to .grad")
    g = torch.Generator().manual_seed(3)
    for n in (3, 7):
        z = 3 * torch.randn(n, generator=g)
        y = torch.randint(0, 2, (n,), generator=g).float()
        z_leaf = z.clone().requires_grad_()
        (expected,) = torch.autograd.grad(F.binary_cross_entropy_with_logits(z_leaf, y), z_leaf)
        got = mean_bce_grad(z, y)
        check(got, expected, f"mean_bce_grad on a batch of {n}", reveal=False,
              hint="section 4's p − y is the derivative of ONE sample's loss: what does averaging over the "
                   "batch do to it? And mind the sign")


@exercise("Exercise 4")
def ex4(kl, entropy_from_logits):
    half, skewed = torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75])
    check(kl(half, skewed), torch.tensor(0.5 * math.log(4 / 3)), "KL([½, ½] ‖ [¼, ¾])", reveal=False,
          hint="Σ p ln(p / q) with the natural log; KL is not symmetric: the weights are p, the first argument")
    p = torch.softmax(torch.randn(6, generator=torch.Generator().manual_seed(4)), dim=0)
    check(kl(p, p), torch.tensor(0.0), "KL(p ‖ p) = 0")
    check(kl(torch.tensor([1.0, 0.0]), half), torch.tensor(math.log(2)), "KL([1, 0] ‖ [½, ½])", reveal=False,
          hint="0 · ln 0 counts as 0, but in floating point it is nan: leave out the entries where p = 0")

    def stable_entropy(logits):
        return -(logits.softmax(dim=0) * logits.log_softmax(dim=0)).sum()

    g = torch.Generator().manual_seed(5)
    for what, logits in [("random logits", 2 * torch.randn(5, generator=g)),
                         ("ten equal logits", torch.zeros(10))]:
        check(entropy_from_logits(logits), stable_entropy(logits), f"entropy_from_logits of {what}", reveal=False,
              hint="H = −Σ p ln p of the probabilities p = softmax(logits), in nats")
    for logits in (torch.tensor([0.0, 200.0]), torch.tensor([3.0, 3.0, -1000.0])):
        check(entropy_from_logits(logits), stable_entropy(logits),
              f"entropy_from_logits of {logits.tolist()}", reveal=False,
              hint="a probability that underflowed to 0 times ln 0 = −inf gives nan: which function gives "
                   "log-probabilities without forming the tiny probability (pitfall 10)?")


@exercise("Exercise 5")
def ex5(squares, n_batches):
    check(isinstance(squares, Dataset), True, "squares is a Dataset",
          hint="subclass torch.utils.data.Dataset, then make one with n = 1000")
    check(len(squares), 1000, "len(squares)", hint="__len__ returns the n given to __init__")
    small = type(squares)(8)                         # a fresh one, of another size
    check(len(small), 8, "len(SquaresDataset(8))", hint="__len__ returns the n given to __init__, not a fixed number")
    item = small[2]
    check(isinstance(item, (tuple, list)) and len(item) == 2, True, "an item is a pair (x, target)",
          hint="__getitem__ returns two things")
    check(item[0], torch.tensor([0.25]), "x of item 2 of SquaresDataset(8)",
          hint="x = torch.tensor([i / n]): a float tensor of shape [1]")
    check(item[1], torch.tensor([0.0625]), "its target, x ** 2")
    xb, _ = next(iter(DataLoader(squares, batch_size=32)))
    check(tuple(xb.shape), (32, 1), "a batch of x has shape [32, 1]")
    check(type(n_batches).__name__, "int", "n_batches is an int", hint="len(...) of a DataLoader is one")
    check(n_batches, len(DataLoader(range(1000), batch_size=32, drop_last=True)), "batches with drop_last=True",
          reveal=False, hint="len(loader) counts the batches; what does drop_last=True do to the last one?")


@exercise("Exercise 6")
def ex6(accuracy_from_logits):
    logits = torch.randn(8, 8, generator=torch.Generator().manual_seed(6))   # square: a wrong dim still runs
    labels = logits.argmax(dim=1)
    labels[:3] = (labels[:3] + 1) % 8                # make 3 of the 8 predictions wrong
    check(accuracy_from_logits(logits, labels), 5 / 8, "a batch of 8 logits with 5 right",
          hint="the predicted class is the position of the largest logit, over the class dimension (the other "
               "dimension picks a sample, not a class); compare it with labels, then average")
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5], [0.2, 0.1, 0.0], [-1.0, -2.0, 4.0]])
    labels = torch.tensor([1, 0, 2, 2])
    check(accuracy_from_logits(logits, labels), 3 / 4, "the batch logits6, labels6: 3 of 4 right")


def _raw_run(x, y, lr=0.01, steps=100) -> list[float]:
    """The loss of every step of Exercise 7's run (recorded before the step)."""
    with torch.random.fork_rng(devices=[]):         # the learner's random state stays as it was
        torch.manual_seed(0)
        model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.mse_loss(model(x[:, None]), y[:, None])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@exercise("Exercise 7")
def ex7(raw_losses, growth):
    x, y = line_data()
    expected = torch.tensor(_raw_run(x, y), dtype=torch.float64)
    check(type(raw_losses).__name__, "list", "raw_losses is a list", hint="start with [] and append at every step")
    check(len(raw_losses), 100, "one loss per step, 100 in all")
    check(all(type(v) is float for v in raw_losses), True, "the losses are Python floats",
          hint="take a loss's value with .item()")
    got = torch.tensor(raw_losses, dtype=torch.float64)
    check(raw_losses[0], expected[0].item(), "the loss before the first step", rtol=1e-4, reveal=False,
          hint="torch.manual_seed(0) right before nn.Linear(1, 1); the raw x (not standardised) as a [100, 1] "
               "column, against y as a [100, 1] column too")
    finite = torch.isfinite(expected)
    check(got[finite], expected[finite], "the losses while they are finite", rtol=1e-3, reveal=False,
          hint="lr=0.01, zero_grad() before every backward(), and the loss recorded before each step")
    check(torch.isfinite(got), finite, "which steps overflow")
    top = torch.linalg.eigvalsh(_line_hessian(x))[-1].item()
    check(growth, (1 - 0.01 * top) ** 2, "the growth per step, predicted from the Hessian", rtol=1e-3,
          reveal=False, hint="a step multiplies the distance along a direction of curvature λ by (1 − ηλ): "
                             "which direction dominates, and what does that do to a squared error?")
