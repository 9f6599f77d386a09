"""The checks of lesson 06's exercises (regularisation)."""
import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..check import CheckFailed, check, exercise, forbidding
from ..train import param_groups


def _require(condition: bool, name: str, failure: str, hint: str) -> None:
    """A ✓ line for ``name`` when ``condition`` holds, else a CheckFailed saying ``failure``."""
    if not condition:
        raise CheckFailed(f"{name}: {failure}\nhint: {hint}")
    print(f"✓ {name}")


def _folds(kfold_split, labels: torch.Tensor, k: int, seed: int) -> list:
    """The learner's folds for one seeded generator, as a list of (train_idx, val_idx) pairs."""
    folds = kfold_split(labels, k, torch.Generator().manual_seed(seed))
    if not isinstance(folds, (list, tuple)) or not all(isinstance(f, (list, tuple)) and len(f) == 2 for f in folds):
        raise CheckFailed("kfold_split should return a list of (train_idx, val_idx) pairs"
                          "\nhint: one pair per fold: the fold's validation indices and everything else")
    for train_idx, val_idx in folds:
        for what, idx in (("train_idx", train_idx), ("val_idx", val_idx)):
            if not isinstance(idx, torch.Tensor) or idx.dtype != torch.int64 or idx.ndim != 1:
                raise CheckFailed(f"each {what} should be a 1-D int64 tensor of indices, got "
                                  + (f"a tensor of dtype {idx.dtype} and shape {tuple(idx.shape)}"
                                     if isinstance(idx, torch.Tensor) else type(idx).__name__)
                                  + "\nhint: indices are int64 tensors, such as torch.randperm returns")
    return folds


def _pattern(folds) -> list:
    return [val_idx.tolist() for _, val_idx in folds]


@exercise("Exercise 1")
def ex1(kfold_split):
    # Imbalanced labels in class order (as many data sets are stored), n not divisible by k.
    cases = [(torch.tensor([0] * 30 + [1] * 7 + [2] * 13), 4),
             (torch.tensor([0] * 9 + [1] * 9 + [2] * 9 + [3] * 4), 3),
             (torch.arange(5).repeat_interleave(20)[torch.randperm(100, generator=torch.Generator().manual_seed(7))],
              6)]
    for labels, k in cases:
        n = len(labels)
        where = f"{n} labels, k={k}"
        folds = _folds(kfold_split, labels, k, seed=0)
        check(len(folds), k, f"{where}: {k} (train_idx, val_idx) pairs",
              hint="k folds, even when k does not divide n: torch.chunk can return fewer pieces than asked")
        vals = [val_idx for _, val_idx in folds]
        check(torch.cat(vals).sort().values, torch.arange(n), f"{where}: the validation folds hold each index once",
              reveal=False, hint="every index of range(len(labels)) goes to exactly one validation fold")
        sizes = [len(v) for v in vals]
        _require(max(sizes) - min(sizes) <= 1, f"{where}: the fold sizes differ by at most one",
                 f"they are {sizes}", hint="no fold may take the remainder alone: hand the indices out in turn")
        rest = [torch.cat(vals[:i] + vals[i + 1:]).sort().values for i in range(k)]
        wrong = [i for i, (train_idx, _) in enumerate(folds)
                 if train_idx.shape != rest[i].shape or not torch.equal(train_idx.sort().values, rest[i])]
        _require(not wrong, f"{where}: each train_idx is every index not in its val_idx",
                 f"not so in fold(s) {wrong}", hint="the training indices of a fold are the other k-1 folds together")
        counts = {c: [int((labels[v] == c).sum()) for v in vals] for c in labels.unique().tolist()}
        uneven = {c: n_c for c, n_c in counts.items() if max(n_c) - min(n_c) > 1}
        _require(not uneven, f"{where}: every class is spread evenly over the folds",
                 "the counts per fold of " + ", ".join(f"class {c} are {n_c}" for c, n_c in uneven.items())
                 + " (they should differ by at most one)",
                 hint="each class must be shared out over the folds on its own")
        _require(_pattern(_folds(kfold_split, labels, k, seed=0)) == _pattern(folds),
                 f"{where}: the same generator seed gives the same folds", "two generators seeded alike gave "
                 "different folds", hint="draw every random number from the generator you are given "
                 "(generator=...), not from torch's global one")
        contiguous = all(v.sort().values.tolist() == list(range(int(v.min()), int(v.max()) + 1)) for v in vals)
        _require(not contiguous, f"{where}: the folds are shuffled", "every fold is a range of neighbouring "
                 "indices", hint="the order must come from `generator`")
        _require(_pattern(_folds(kfold_split, labels, k, seed=1)) != _pattern(folds),
                 f"{where}: another generator seed gives other folds", "generators seeded 0 and 1 gave the "
                 "same folds", hint="the seed has to change which indices go to which fold")


@exercise("Exercise 2")
def ex2(l2_penalty):
    for wd in (0.1, 0.03):
        torch.manual_seed(3)
        X, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
        reference = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Tanh(), nn.Linear(6, 3))
        yours = copy.deepcopy(reference)
        opt_reference = torch.optim.SGD(param_groups(reference, wd), lr=0.5)   # decay on the ndim >= 2 weights
        opt_yours = torch.optim.SGD(yours.parameters(), lr=0.5)
        for _ in range(3):
            opt_reference.zero_grad()
            F.cross_entropy(reference(X), y).backward()
            opt_reference.step()
            penalty = l2_penalty(yours, wd)
            if not isinstance(penalty, torch.Tensor) or penalty.numel() != 1 or not penalty.requires_grad:
                raise CheckFailed("l2_penalty should return a one-number tensor that autograd can differentiate, "
                                  f"got {type(penalty).__name__}"
                                  + (f" {tuple(penalty.shape)}, requires_grad={penalty.requires_grad}"
                                     if isinstance(penalty, torch.Tensor) else "")
                                  + "\nhint: build it from the parameters with tensor operations (no .item(), "
                                    "no .detach()), summed to one number")
            opt_yours.zero_grad()
            (F.cross_entropy(yours(X), y) + penalty.sum()).backward()
            opt_yours.step()
        for (name, p), q in zip(yours.named_parameters(), reference.parameters()):
            check(p.detach(), q.detach(), f"wd={wd}: {name} after 3 steps matches param_groups", reveal=False,
                  hint="remember which parameters `param_groups` decays, and mind the factor in front")


@exercise("Exercise 3")
def ex3(my_dropout):
    torch.manual_seed(4)
    x = torch.rand(400, 500) + 0.5             # 400 examples, 500 units; no value is zero
    original = x.clone()
    for p in (0.8, 0.25):
        with forbidding(("torch.nn.functional.dropout", "torch.dropout"), "my_dropout",
                        hint="build the mask yourself from random numbers"):
            out = my_dropout(x, p, True)
            again = my_dropout(x, p, True)
        _require(torch.equal(x, original), f"p={p}: the input is left unchanged", "your function changed x",
                 hint="return a new tensor; do not zero or scale x in place")
        _require(isinstance(out, torch.Tensor) and out.shape == x.shape, f"p={p}: a tensor of the input's shape",
                 f"got {tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__} for an input "
                 f"of shape {tuple(x.shape)}", hint="zero and scale elements; keep the shape")
        zero = out == 0
        share = zero.float().mean().item()
        _require(abs(share - p) < 0.01, f"p={p}: about {p:.0%} of the elements are zero", f"{share:.1%} are",
                 hint="p is the probability to DROP an element, each element on its own")
        blocks = zero.reshape(-1).float().view(20, -1).mean(1)          # 20 runs of 10 000 positions
        _require(bool(((blocks - p).abs() < 0.04).all()), f"p={p}: the zeros are spread over all positions",
                 f"the share of zeros in 20 runs of 10 000 positions goes from {blocks.min():.0%} to "
                 f"{blocks.max():.0%}", hint="draw a random number for every element, not a fixed pattern")
        _require(not (torch.equal(zero[0], zero[1]) or torch.equal(zero[:, 0], zero[:, 1])),
                 f"p={p}: different examples (rows) lose different units",
                 "two rows (or two columns) have their zeros in the same places",
                 hint="the mask needs x's full shape: one random draw per element, not one per unit or per example")
        _require(not torch.equal(zero, again == 0), f"p={p}: a second call draws a new mask",
                 "two calls zeroed the same elements",
                 hint="dropout draws a fresh mask at every call; do not re-seed inside the function")
        kept = ~zero
        check(out[kept], x[kept] / (1 - p), f"p={p}: the kept values are scaled by 1/(1-p)", reveal=False,
              hint="scale the survivors so that the expected value of every element stays what it was")
    with forbidding(("torch.nn.functional.dropout", "torch.dropout"), "my_dropout",
                        hint="build the mask yourself from random numbers"):
        evaluated = my_dropout(x, 0.8, False)
    _require(torch.equal(evaluated, x), "training=False returns x unchanged", "it changed the values",
             hint="in eval mode dropout is the identity: no zeros and no scaling")


@exercise("Exercise 4")
def ex4(lr_epoch_75):
    _require(isinstance(lr_epoch_75, float), "the answer is a Python float", f"got {type(lr_epoch_75).__name__} "
             f"{lr_epoch_75!r}", hint="write the rate as arithmetic on Python numbers (no tensor, no string)")
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=25, gamma=0.5)
    for _epoch in range(1, 76):
        used = optimizer.param_groups[0]["lr"]        # the rate this epoch trains with (the last: epoch 75)
        optimizer.step()
        scheduler.step()
    check(lr_epoch_75, used, "the learning rate of epoch 75", reveal=False, rtol=1e-6, atol=0.0,
          hint="count the scheduler steps made before epoch 75 starts, and how many whole multiples of "
               "step_size they hold")
