"""The checks of lesson 01's exercises (tensors).

Exercises 2 to 7 ask for a function, and the checks call it on batches of their own (the
lesson's example and others), so that an answer copied from the exercise's text does not pass.
"""
import torch

from ..check import CheckFailed, call_learner, check, exercise


def _pair(result, call: str, names: str):
    """The two results a function must return, or a CheckFailed that says what came back."""
    if isinstance(result, (tuple, list)) and len(result) == 2:
        return result
    what = f"{len(result)} values" if isinstance(result, (tuple, list)) else type(result).__name__
    raise CheckFailed(f"{call} returned {what}, not two ({names})\nhint: end the function with `return {names}`")


def _shape(t: torch.Tensor) -> str:
    return "[" + ", ".join(str(n) for n in t.shape) + "]"


# ------------------------------------------------------------------------------ Exercise 1
def _broadcast_or_none(*shapes):
    try:
        return tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        return None


@exercise("Exercise 1")
def ex1(shape_a, shape_b, shape_c):
    hint = ("right-align the two shapes and pad the shorter one with 1s on the left; then compare them "
            "position by position, as section 10 does")
    questions = [("shape_a", shape_a, (8, 1, 6, 1), (7, 1, 5)),
                 ("shape_b", shape_b, (5, 3, 1), (1, 4)),
                 ("shape_c", shape_c, (2, 3), (3, 2))]
    for name, answer, x, y in questions:
        if isinstance(answer, list):
            answer = tuple(answer)   # [5, 3, 4] means (5, 3, 4)
        check(answer, _broadcast_or_none(x, y), f"{name}, {x} with {y}", hint=hint, reveal=False)


# ------------------------------------------------------------------------------ Exercise 2
def _sequences():
    """Padded batches (seqs, lengths): the lesson's example, one whose real elements end in 0,
    and a random one with lengths from 1 to the full length."""
    yield (torch.tensor([[7, 3, 0, 0, 0], [4, 1, 8, 2, 9], [5, 0, 0, 0, 0]]), torch.tensor([2, 5, 2]))
    yield torch.tensor([[4, 0, 0, 0], [0, 6, 0, 0], [1, 2, 3, 4]]), torch.tensor([2, 3, 4])
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([1, 7, 3, 5, 2, 6])
    seqs = torch.randint(0, 10, (6, 7), generator=g)
    seqs[torch.arange(7) >= lengths.unsqueeze(1)] = 0   # pad with 0s after each length
    yield seqs, lengths


@exercise("Exercise 2")
def ex2(last_real):
    hint = ("positions count from 0: where does a sequence of length n end? gather(1, index) wants an index "
            "with as many dimensions as seqs, and returns a tensor of the index's shape")
    for seqs, lengths in _sequences():
        call = f"last_real on seqs of shape {_shape(seqs)}"
        expected = torch.tensor([row[n - 1] for row, n in zip(seqs.tolist(), lengths.tolist())])
        got = call_learner(call, last_real, seqs.clone(), lengths.clone(), hint=hint)
        check(got, expected, call, hint=hint)


# ------------------------------------------------------------------------------ Exercise 3
_ROWS = [(torch.tensor([1, 2, 3]), 4), (torch.tensor([0.5, -1.0]), 3), (torch.arange(5), 2)]


@exercise("Exercise 3")
def ex3(grid_of, tiled):
    for row, n in _ROWS:
        call = f"grid_of({row.tolist()}, {n})"
        got = call_learner(call, grid_of, row, n, hint="a size-1 dimension can be stretched to any size")
        check(got, torch.tensor([row.tolist()] * n), call,
              hint="every one of the n lines equals row; row's shape [k] lines up with [1, k]")
        shares = got.untyped_storage().data_ptr() == row.untyped_storage().data_ptr()
        check(shares, True, f"{call} reads row's memory (no copy)",
              hint="of section 8's two ways to grow a tensor, only one copies nothing")
    for row, _ in _ROWS:
        call = f"tiled({row.tolist()})"
        got = call_learner(call, tiled, row, hint="repeat's arguments multiply the sizes of the dimensions")
        check(got, torch.tensor([row.tolist() * 2] * 2), call,
              hint="repeat multiplies each dimension's size; row, of shape [k], counts as [1, k]")


# ------------------------------------------------------------------------------ Exercise 4
@exercise("Exercise 4")
def ex4(center_channels):
    g = torch.Generator().manual_seed(4)
    for shape in [(2, 3, 4, 5), (1, 4, 3, 3)]:
        imgs = torch.rand(shape, generator=g)
        before = imgs.clone()
        call = f"center_channels on imgs of shape {_shape(imgs)}"
        means, centered = _pair(call_learner(call, center_channels, imgs,
                                             hint="the means must stay lined up with imgs to broadcast "
                                                  "against it"),
                                call, "means, centered")
        expected = before.mean(dim=(2, 3), keepdim=True)
        check(means, expected, f"{call}: means",
              hint="one mean per image and channel, over the pixels (h and w); which argument of mean keeps "
                   "the reduced dimensions, with size 1?")
        check(centered, before - expected, f"{call}: centered",
              hint="subtract from every pixel the mean of its own image and channel")
        check(torch.equal(imgs, before), True, f"{call} leaves imgs unchanged",
              hint="an in-place operation (-=, sub_) wrote into the caller's imgs")


# ------------------------------------------------------------------------------ Exercise 5
def _marks():
    yield torch.tensor([[55.0, 72.0, 60.0, 38.0], [91.0, 59.5, 80.0, 66.0], [40.0, 45.0, 30.0, 61.0]])
    g = torch.Generator().manual_seed(5)
    marks = torch.randint(80, 141, (5, 3), generator=g) / 2   # 40.0, 40.5, ..., 70.0
    marks[1, 2] = 60.0
    yield marks


@exercise("Exercise 5")
def ex5(passes):
    for marks in _marks():
        call = f"passes on marks of shape {_shape(marks)}"
        rows = marks.tolist()
        passed, n_passed = _pair(call_learner(call, passes, marks.clone(), hint="a comparison gives a bool mask"),
                                 call, "passed, n_passed")
        check(passed, torch.tensor([m for r in rows for m in r if m >= 60]), f"{call}: passed",
              hint="'at least 60' includes 60 itself; a boolean mask selects elements into a 1-D tensor, "
                   "row by row")
        check(n_passed, torch.tensor([sum(m >= 60 for m in r) for r in rows]), f"{call}: n_passed",
              hint="True counts as 1; one count per student, so reduce along a student's exams")


# ------------------------------------------------------------------------------ Exercise 6
@exercise("Exercise 6")
def ex6(to_chw):
    for shape in [(2, 5, 4, 3), (3, 4, 4, 2)]:
        hwc = torch.arange(torch.Size(shape).numel()).view(shape)
        b, h, w, c = shape
        call = f"to_chw on hwc of shape {_shape(hwc)}"
        chw, flat = _pair(call_learner(call, to_chw, hwc,
                                       hint="view needs memory whose order fits the new shape; "
                                            "reshape copies when it must"),
                          call, "chw, flat")
        pixels = hwc.tolist()   # chw[i, ch, y, x] = hwc[i, y, x, ch], element by element
        expected = torch.tensor([[[[pixels[i][y][x][ch] for x in range(w)] for y in range(h)] for ch in range(c)]
                                 for i in range(b)])
        check(chw, expected, f"{call}: chw",
              hint="permute lists, for each new dimension, its position in the old order [b, h, w, c]; view "
                   "and reshape keep the memory order, so they cannot move the channels")
        check(flat, expected.reshape(b, -1), f"{call}: flat",
              hint="keep dim 0 and merge the others, of chw (channel by channel), not of hwc")


# ------------------------------------------------------------------------------ Exercise 7
def _scores():
    yield (torch.tensor([[0.1, 2.0, 1.5, 0.3, 0.0], [1.0, 0.2, 0.1, 0.3, 0.9], [0.0, 0.1, 0.2, 0.3, 3.0],
                         [2.5, 0.0, 2.4, 0.1, 2.6]]), torch.tensor([2, 3, 4, 2]))
    g = torch.Generator().manual_seed(7)
    yield torch.randn(50, 10, generator=g), torch.randint(0, 10, (50,), generator=g)


@exercise("Exercise 7")
def ex7(top2_accuracy):
    for logits, labels in _scores():
        call = f"top2_accuracy on logits of shape {_shape(logits)}"
        got = call_learner(call, top2_accuracy, logits.clone(), labels.clone(),
                           hint="print each step's shape: topk's indices are [n, 2]; which shape of "
                                "labels compares with them row by row?")
        hits = [label in sorted(range(len(row)), key=row.__getitem__, reverse=True)[:2]
                for row, label in zip(logits.tolist(), labels.tolist())]   # plain Python sorting
        check(got, sum(hits) / len(hits), call, reveal=False,
              hint="a sample counts once if its label is either of its 2 highest positions; the accuracy is "
                   "(samples that count) / (all samples), a Python float between 0 and 1")
