"""Lesson 06's exercise checks: the model answer passes, the wrong answers learners really
give fail (tests/exercise_harness.py). A check that let one through would teach the learner
that the wrong answer is right.
"""
import torch
import torch.nn.functional as F
from exercise_harness import exercise_tests

from helpers.exercises import lesson06


# ------------------------------------------------------------------ Exercise 1: stratified k-fold
def _pairs(folds):
    """(train_idx, val_idx) pairs from k validation folds."""
    folds = list(folds)
    return [(torch.cat(folds[:i] + folds[i + 1:]), folds[i]) for i in range(len(folds))]


def kfold_stratified(labels, k, generator):
    order = torch.randperm(len(labels), generator=generator)
    order = order[labels[order].argsort(stable=True)]      # grouped by class, shuffled inside each class
    return _pairs(order[j::k] for j in range(k))            # dealt out in turn, like cards


def kfold_plain_shuffled(labels, k, generator):
    return _pairs(torch.tensor_split(torch.randperm(len(labels), generator=generator), k))


def kfold_unshuffled(labels, k, generator):
    return _pairs(torch.tensor_split(torch.arange(len(labels)), k))


def kfold_with_chunk(labels, k, generator):
    order = torch.randperm(len(labels), generator=generator)
    order = order[labels[order].argsort(stable=True)]
    return _pairs(order.chunk(k))


def kfold_global_rng(labels, k, generator):
    order = torch.randperm(len(labels))                    # ignores the generator it was given
    order = order[labels[order].argsort(stable=True)]
    return _pairs(order[j::k] for j in range(k))


def kfold_reseeds(labels, k, generator):
    torch.manual_seed(0)                                   # the same folds whatever generator comes in
    return kfold_global_rng(labels, k, generator)


def kfold_stratified_unshuffled(labels, k, generator):
    order = labels.argsort(stable=True)
    return _pairs(order[j::k] for j in range(k))


def kfold_class_blocks(labels, k, generator):
    """Stratified, shuffled, but each class's indices cut into k pieces: a class's remainder piles up."""
    order = torch.randperm(len(labels), generator=generator)
    pieces = [torch.tensor_split(order[labels[order] == c], k) for c in labels.unique()]
    return _pairs(torch.cat([p[j] for p in pieces]) for j in range(k))


def kfold_train_is_everything(labels, k, generator):
    return [(torch.arange(len(labels)), val_idx) for _, val_idx in kfold_stratified(labels, k, generator)]


def kfold_one_fewer(labels, k, generator):
    return kfold_stratified(labels, k - 1, generator)


def kfold_float_indices(labels, k, generator):
    return [(tr.float(), va.float()) for tr, va in kfold_stratified(labels, k, generator)]


# ------------------------------------------------------------------ Exercise 2: the L2 penalty of param_groups
def _decayed(model):
    return [p for p in model.parameters() if p.ndim >= 2]


def l2_model(model, wd):
    return wd / 2 * sum((p ** 2).sum() for p in _decayed(model))


def l2_every_parameter(model, wd):
    """Section 3's l2_term copied: it decays the biases and the LayerNorm parameters too."""
    return wd / 2 * sum((p ** 2).sum() for p in model.parameters())


def l2_no_half(model, wd):
    return wd * sum((p ** 2).sum() for p in _decayed(model))


def l2_named_weight(model, wd):
    """Every parameter named "...weight": LayerNorm's 1-D scale included."""
    return wd / 2 * sum((p ** 2).sum() for name, p in model.named_parameters() if name.endswith("weight"))


def l2_norm_not_squared(model, wd):
    return wd / 2 * sum(p.norm() for p in _decayed(model))


def l2_as_float(model, wd):
    return (wd / 2 * sum((p ** 2).sum() for p in _decayed(model))).item()


def l2_mean(model, wd):
    return wd / 2 * sum((p ** 2).mean() for p in _decayed(model))


def l2_detached(model, wd):
    return wd / 2 * sum((p.detach() ** 2).sum() for p in _decayed(model))


# ------------------------------------------------------------------ Exercise 3: dropout by hand
def dropout_model(x, p, training):
    if not training:
        return x
    return x * (torch.rand_like(x) >= p) / (1 - p)


def dropout_first_elements(x, p, training):
    """The issue's example: a fixed mask that zeroes the first p·n elements."""
    if not training:
        return x
    keep = torch.ones(x.numel())
    keep[:int(p * x.numel())] = 0
    return x * keep.view_as(x) / (1 - p)


def dropout_keeps_with_p(x, p, training):
    return x * (torch.rand_like(x) < p) / (1 - p) if training else x


def dropout_no_scaling(x, p, training):
    return x * (torch.rand_like(x) >= p) if training else x


def dropout_scaled_by_1_over_p(x, p, training):
    return x * (torch.rand_like(x) >= p) / p if training else x


def dropout_multiplied_by_keep(x, p, training):
    return x * (torch.rand_like(x) >= p) * (1 - p) if training else x


def dropout_always(x, p, training):
    return x * (torch.rand_like(x) >= p) / (1 - p)


def dropout_old_style_eval(x, p, training):
    """Scales at test time as well (the original paper's way), on top of inverted dropout."""
    return x * (torch.rand_like(x) >= p) / (1 - p) if training else x * (1 - p)


def dropout_reseeds(x, p, training):
    if not training:
        return x
    g = torch.Generator().manual_seed(0)
    return x * (torch.rand(x.shape, generator=g) >= p) / (1 - p)


def dropout_one_mask_per_unit(x, p, training):
    """One draw per unit (column), shared by every example of the batch."""
    return x * (torch.rand(x.shape[-1]) >= p) / (1 - p) if training else x


def dropout_in_place(x, p, training):
    if training:
        x[torch.rand_like(x) < p] = 0
        x /= 1 - p
    return x


def dropout_calls_library(x, p, training):
    return F.dropout(x, p, training)


LESSON06 = {
    lesson06.ex1: ((kfold_stratified,), {
        "plain shuffled k-fold, not stratified": (kfold_plain_shuffled,),
        "unshuffled folds (ranges of indices)": (kfold_unshuffled,),
        "torch.chunk, which returns fewer than k folds": (kfold_with_chunk,),
        "ignores the generator (global RNG)": (kfold_global_rng,),
        "re-seeds inside: the same folds for every generator": (kfold_reseeds,),
        "stratified but not shuffled": (kfold_stratified_unshuffled,),
        "each class cut into k pieces: remainders pile up in the first folds": (kfold_class_blocks,),
        "train_idx holds the validation fold too": (kfold_train_is_everything,),
        "k-1 folds": (kfold_one_fewer,),
        "float indices": (kfold_float_indices,),
    }),
    lesson06.ex2: ((l2_model,), {
        "every parameter (section 3's l2_term copied)": (l2_every_parameter,),
        "without the ½": (l2_no_half,),
        "every parameter named weight, LayerNorm's scale included": (l2_named_weight,),
        "the norm, not its square": (l2_norm_not_squared,),
        ".item(): a float without gradient": (l2_as_float,),
        "the mean instead of the sum": (l2_mean,),
        "detached parameters": (l2_detached,),
    }),
    lesson06.ex3: ((dropout_model,), {
        "a fixed mask zeroing the first p·n elements": (dropout_first_elements,),
        "keeps with probability p": (dropout_keeps_with_p,),
        "forgets the 1/(1-p) scaling": (dropout_no_scaling,),
        "scales by 1/p": (dropout_scaled_by_1_over_p,),
        "multiplies by (1-p)": (dropout_multiplied_by_keep,),
        "ignores training=False": (dropout_always,),
        "scales by (1-p) in eval mode": (dropout_old_style_eval,),
        "re-seeds: the same mask at every call": (dropout_reseeds,),
        "one mask per unit, shared by the batch": (dropout_one_mask_per_unit,),
        "zeroes x in place": (dropout_in_place,),
        "calls F.dropout": (dropout_calls_library,),
    }),
    lesson06.ex4: ((0.1 * 0.5 ** (74 // 25),), {
        "off by one: 75 scheduler steps counted before epoch 75 (0.0125)": (0.1 * 0.5 ** (75 // 25),),
        "one halving too few (0.05)": (0.05,),
        "a smooth decay 0.1·0.5^(74/25)": (0.1 * 0.5 ** (74 / 25),),
        "gamma read as the factor per epoch, 0.1·0.5^74": (0.1 * 0.5 ** 74,),
        "the starting rate typed in from the text": (0.1,),
        "StepLR(30, 0.1) of section 6 at epoch 75 (0.001)": (0.001,),
        "a string": ("0.025",),
        "a tensor": (torch.tensor(0.025),),
    }),
}

test_model_answers, test_wrong_answers = exercise_tests(LESSON06)
