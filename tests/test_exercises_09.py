"""Lesson 09's exercise checks: the model answer passes, the wrong answers learners really
give fail (tests/exercise_harness.py). A check that let one through would teach the learner
that the wrong answer is right.
"""
import math

import torch
import torch.nn.functional as F
from exercise_harness import exercise_tests

from helpers.exercises import lesson09


# ------------------------------------------------------------------ Exercise 2: accumulation
def _accumulate(model, x, y, micro_batches, weigh="size", zero_each=False):
    """Gradient accumulation, and the slips learners make in it."""
    for xs, ys in zip(x.chunk(micro_batches), y.chunk(micro_batches)):
        if zero_each:
            model.zero_grad()
        loss = F.cross_entropy(model(xs), ys)
        if weigh == "size":
            loss = loss * len(ys) / len(y)
        elif weigh == "count":
            loss = loss / micro_batches
        elif weigh == "size_only":
            loss = loss * len(ys)
        loss.backward()


def _summed(model, x, y, micro_batches):
    """A right answer written another way: summed losses, divided by the whole batch."""
    for xs, ys in zip(x.chunk(micro_batches), y.chunk(micro_batches)):
        (F.cross_entropy(model(xs), ys, reduction="sum") / len(y)).backward()


def _whole_batch(model, x, y, micro_batches):
    F.cross_entropy(model(x), y).backward()


def _forgets_backward(model, x, y, micro_batches):
    return sum(F.cross_entropy(model(xs), ys) for xs, ys in zip(x.chunk(micro_batches), y.chunk(micro_batches)))


def _chunks_x_only(model, x, y, micro_batches):
    for xs in x.chunk(micro_batches):
        (F.cross_entropy(model(xs), y[:len(xs)]) * len(xs) / len(y)).backward()


def _raises(model, x, y, micro_batches):
    for i in range(micro_batches):
        F.cross_entropy(model(x[i]), y[i]).backward()   # one sample, not a micro-batch: a shape error


# ------------------------------------------------------------------ Exercise 3: shards
def _padded_strided(n, world_size):
    total = math.ceil(n / world_size) * world_size
    order = [i % n for i in range(total)]
    return [order[r::world_size] for r in range(world_size)]


def _padded_blocks(n, world_size):
    each = math.ceil(n / world_size)
    order = [i % n for i in range(each * world_size)]
    return [order[r * each:(r + 1) * each] for r in range(world_size)]


LESSON09 = {
    lesson09.ex1: ((4096, 1.6), {
        "forgets the accumulation": (2048, 0.8),
        "counts machines, not GPUs": (512, 0.2),
        "counts one machine's GPUs only": (1024, 0.4),
        "the learning rate left as it was": (4096, 0.1),
        "the learning rate times the number of GPUs": (4096, 3.2),
        "scales from the per-GPU batch": (4096, 6.4),
        "the learning rate scaled down": (4096, 0.00625),
        "the square-root rule": (4096, 0.4),
        "a float batch (from /)": (4096.0, 1.6),
        "a tensor learning rate": (4096, torch.tensor(1.6)),
        "per GPU times accumulation only": (128, 0.05),
    }),
    lesson09.ex2: ((_accumulate,), {
        "divides by the number of micro-batches (wrong for a smaller last one)":
            (lambda *a: _accumulate(*a, weigh="count"),),
        "forgets to scale the losses": (lambda *a: _accumulate(*a, weigh=None),),
        "zeroes the gradients at every micro-batch": (lambda *a: _accumulate(*a, zero_each=True),),
        "multiplies by the size but forgets to divide by the batch": (lambda *a: _accumulate(*a, weigh="size_only"),),
        "the whole batch at once": (_whole_batch,),
        "forgets backward()": (_forgets_backward,),
        "chunks x but not y": (_chunks_x_only,),
        "one sample per call": (_raises,),
    }),
    lesson09.ex3: ((_padded_strided,), {
        "every rank gets everything": (lambda n, w: [list(range(n)) for _ in range(w)],),
        "strided, not padded": (lambda n, w: [list(range(r, n, w)) for r in range(w)],),
        "blocks of n // w: the remainder lost": (lambda n, w: [list(range(r * (n // w), (r + 1) * (n // w)))
                                                              for r in range(w)],),
        "the remainder to the last rank": (lambda n, w: [list(range(r * (n // w), (r + 1) * (n // w) if r < w - 1
                                                                    else n)) for r in range(w)],),
        "padded with -1": (lambda n, w: [list(range(r, n, w)) + [-1] * (math.ceil(n / w) - len(range(r, n, w)))
                                         for r in range(w)],),
        "padded with one sample too many": (lambda n, w: [list(range(r, n, w)) + [0] * (math.ceil(n / w) + 1
                                                                                      - len(range(r, n, w)))
                                                          for r in range(w)],),
        "ranks numbered from 1": (lambda n, w: [[i % n for i in range(math.ceil(n / w) * w)][r::w]
                                                for r in range(1, w + 1)],),
        "padded with n, one past the last id": (lambda n, w: [list(range(r, n, w)) + [n] * (math.ceil(n / w)
                                                                                             - len(range(r, n, w)))
                                                              for r in range(w)],),
        "the world size and n swapped": (lambda n, w: _padded_strided(w, n),),
        "one flat list": (lambda n, w: list(range(n)),),
    }),
}

test_model_answers, test_wrong_answers = exercise_tests(LESSON09)


def test_other_right_answers_pass(capsys):
    """Right answers written another way must pass too: summed losses over the whole batch, and
    padded contiguous blocks instead of DistributedSampler's stride."""
    lesson09.ex2(_summed)
    lesson09.ex3(_padded_blocks)
    assert "✗" not in capsys.readouterr().out
