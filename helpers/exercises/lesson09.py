"""The checks of lesson 09's exercises (data parallelism)."""
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..check import call_learner, check, exercise, fail

# ------------------------------------------------------------------------------ Exercise 1
# The recipe of the exercise: one GPU, a batch of 256 at lr 0.1; then 4 machines x 8 GPUs,
# 64 images per GPU, gradients accumulated over 2 micro-batches per optimiser step.
_BASE_BATCH, _BASE_LR = 256, 0.1
_MACHINES, _GPUS_PER_MACHINE, _PER_GPU, _ACCUMULATION = 4, 8, 64, 2


@exercise("Exercise 1")
def ex1(global_batch, lr):
    if not (isinstance(global_batch, int) and not isinstance(global_batch, bool)):
        fail(f"global_batch should be a Python int, got {type(global_batch).__name__} {global_batch!r}",
             "a number of images is a whole number: multiply integers (no /)")
    expected_batch = _PER_GPU * _MACHINES * _GPUS_PER_MACHINE * _ACCUMULATION
    slips = {
        _PER_GPU * _MACHINES * _GPUS_PER_MACHINE: "one optimiser step waits for several micro-batches on every "
                                                  "GPU: do they count?",
        _PER_GPU * _MACHINES * _ACCUMULATION: "every GPU is a rank, not every machine",
        _PER_GPU * _GPUS_PER_MACHINE * _ACCUMULATION: "the world is every GPU of every machine",
        _PER_GPU * _ACCUMULATION: "the images of one step come from every rank of the world",
    }
    check(global_batch, expected_batch, "the global batch of one optimiser step", reveal=False,
          hint=slips.get(global_batch, "count the images that go into one optimiser step: per GPU, "
                                       "times the ranks, times the micro-batches"))
    if not isinstance(lr, (int, float)) or isinstance(lr, bool):
        fail(f"lr should be a Python number, got {type(lr).__name__} {lr!r}", "a learning rate is a float")
    expected_lr = _BASE_LR * expected_batch / _BASE_BATCH
    lr_slips = {
        _BASE_LR: "the recipe's learning rate went with a batch of 256; the global batch is now bigger",
        _BASE_LR * _MACHINES * _GPUS_PER_MACHINE: "the rule scales with the batch, not with the number of GPUs",
        _BASE_LR * expected_batch / _PER_GPU: "scale from the batch the recipe's learning rate was tuned for",
        _BASE_LR * _BASE_BATCH / expected_batch: "a bigger batch gets a bigger learning rate, not a smaller one",
        _BASE_LR * math.sqrt(expected_batch / _BASE_BATCH): "that is the square-root rule: this exercise asks "
                                                            "for the linear one",
    }
    hint = next((h for value, h in lr_slips.items() if math.isclose(lr, value, rel_tol=1e-6)),
                "the linear scaling rule multiplies the learning rate by the factor the batch grew by")
    check(float(lr), expected_lr, "the learning rate of the linear scaling rule", rtol=1e-6, reveal=False, hint=hint)


# ------------------------------------------------------------------------------ Exercise 2
def _tiny_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))


@exercise("Exercise 2")
def ex2(accumulate):
    g = torch.Generator().manual_seed(9)
    for n, pieces in [(48, 4), (50, 4), (7, 3)]:
        x, y = torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)
        model = _tiny_model(n)
        whole = copy.deepcopy(model)
        F.cross_entropy(whole(x), y).backward()               # the big batch, in one go
        sizes = []
        model.register_forward_hook(lambda module, inputs, output, sizes=sizes: sizes.append(len(inputs[0])))
        case = f"{n} samples in {pieces} micro-batches"
        call_learner(f"accumulate(model, x, y, {pieces})", accumulate, model, x, y, pieces,
                     hint="go through x.chunk(micro_batches) and y.chunk(micro_batches) together")
        if not sizes:
            fail(f"{case}: the model was never called", "run the model on each micro-batch")
        largest = math.ceil(n / pieces)
        if max(sizes) > largest:
            fail(f"{case}: the model saw a batch of {max(sizes)} samples; these micro-batches hold at most "
                 f"{largest}", "feed the model one micro-batch at a time: the point is never to hold the "
                               "whole batch at once")
        if any(p.grad is None for p in model.parameters()):
            fail(f"{case}: the parameters have no gradient", "call backward() on each micro-batch's loss")
        for (name, mine), expected in zip(model.named_parameters(), whole.parameters()):
            check(mine.grad, expected.grad, f"{case}: the gradient of {name}", atol=1e-6, reveal=False,
                  hint="each micro-batch's mean loss must count as much as its samples do in the whole "
                       "batch's mean; backward() adds to .grad, and the last micro-batch may be smaller")


# ------------------------------------------------------------------------------ Exercise 3
@exercise("Exercise 3")
def ex3(my_shards):
    for n, world_size in [(12, 2), (11, 2), (10, 4), (3, 4), (9, 3)]:
        case = f"my_shards({n}, {world_size})"
        shards = call_learner(case, my_shards, n, world_size, hint="return a list with one list of sample ids per rank")
        if not isinstance(shards, (list, tuple)) or len(shards) != world_size:
            fail(f"{case} should give {world_size} shards (one per rank), got "
                 f"{len(shards) if isinstance(shards, (list, tuple)) else type(shards).__name__}",
                 "return a list of world_size lists")
        shards = [s.tolist() if hasattr(s, "tolist") else list(s) for s in shards]
        ids = [i for s in shards for i in s]
        if any(not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n for i in ids):
            fail(f"{case}: a shard holds {next(i for i in ids if not (isinstance(i, int) and 0 <= i < n))!r}, "
                 f"which is no sample id (0 to {n - 1})",
                 "fill a short shard with real samples, repeated, not with a placeholder")
        lengths = [len(s) for s in shards]
        if len(set(lengths)) != 1:
            fail(f"{case}: the shards hold {lengths} samples",
                 "every rank must take the same number of steps, or DDP waits for ever: even them out")
        if set(ids) != set(range(n)):
            missing = sorted(set(range(n)) - set(ids))
            fail(f"{case}: sample(s) {missing[:5]} are in no shard", "every sample must be trained on each epoch")
        check(len(ids), math.ceil(n / world_size) * world_size, f"{case}: the samples of all the shards together",
              reveal=False, hint="a sample in two shards is trained on twice an epoch: repeat only as many as "
                                 "it takes to give every rank as many")


# ------------------------------------------------------------------------------ a written question
# Exercise 4 is a written question: its model answer is in the notebook.
