"""Lesson 01's exercise checks: the model answer passes, the wrong answers learners really
give fail (tests/exercise_harness.py). A check that let one through would teach the learner
that the wrong answer is right.
"""
import torch
from exercise_harness import exercise_tests

from helpers.exercises import lesson01


def _last_real(seqs, lengths):
    return seqs.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)


def _last_nonzero(seqs, lengths):
    """Finds the end of each sequence by its last non-zero element, ignoring lengths."""
    positions = torch.arange(seqs.size(1)).expand_as(seqs)
    return seqs.gather(1, torch.where(seqs != 0, positions, 0).amax(1, keepdim=True)).squeeze(1)


def _center(imgs):
    means = imgs.mean(dim=(2, 3), keepdim=True)
    return means, imgs - means


def _center_in_place(imgs):
    means = imgs.mean(dim=(2, 3), keepdim=True)
    imgs -= means
    return means, imgs


def _passes(marks, at_least=True, count_dim=1):
    ok = marks >= 60 if at_least else marks > 60
    return marks[ok], ok.sum(dim=count_dim)


def _to_chw(hwc):
    chw = hwc.permute(0, 3, 1, 2)
    return chw, chw.reshape(chw.size(0), -1)


def _top2(logits, labels):
    top2 = logits.topk(2, dim=1).indices
    return (top2 == labels.unsqueeze(1)).any(dim=1).float().mean().item()


LESSON01 = {
    lesson01.ex1: (((8, 7, 6, 5), (5, 3, 4), None), {
        "takes the larger size even where neither is 1": ((8, 7, 6, 5), (5, 3, 4), (3, 3)),
        "aligns the shapes on the left": (None, None, None),
        "keeps the first shape's size-1 dimensions": ((8, 1, 6, 1), (5, 3, 4), None),
        "stacks the dimensions (a new one at the front)": ((8, 7, 6, 5), (2, 5, 3, 4), None),
        "the shape of c as a string": ((8, 7, 6, 5), (5, 3, 4), "error"),
    }),
    lesson01.ex2: ((_last_real,), {
        "takes lengths as positions (off by one)": (lambda s, n: s.gather(1, n.clamp(max=s.size(1) - 1)
                                                                    .unsqueeze(1)).squeeze(1),),
        "indexes with lengths itself, past the end": (lambda s, n: s.gather(1, n.unsqueeze(1)).squeeze(1),),
        "forgets the squeeze: shape [n, 1]": (lambda s, n: s.gather(1, (n - 1).unsqueeze(1)),),
        "takes the last column, padding included": (lambda s, n: s[:, -1],),
        "indexes the columns only: an [n, n] table": (lambda s, n: s[:, n - 1],),
        "gathers along dim 0": (lambda s, n: s.gather(0, (n - 1).unsqueeze(0)).squeeze(0),),
        "looks for the last non-zero element": (_last_nonzero,),
        "types in the example's answer": (lambda s, n: torch.tensor([3, 9, 0]),),
    }),
    lesson01.ex3: ((lambda row, n: row.expand(n, -1), lambda row: row.repeat(2, 2)), {
        "grid with repeat: a copy": (lambda row, n: row.repeat(n, 1), lambda row: row.repeat(2, 2)),
        "grid expanded, then made contiguous: a copy": (lambda row, n: row.expand(n, -1).contiguous(),
                                                       lambda row: row.repeat(2, 2)),
        "grid stacked: a copy": (lambda row, n: torch.stack([row] * n), lambda row: row.repeat(2, 2)),
        "grid expanded the wrong way round": (lambda row, n: row.unsqueeze(1).expand(-1, n),
                                              lambda row: row.repeat(2, 2)),
        "tiled with repeat(2): one line": (lambda row, n: row.expand(n, -1), lambda row: row.repeat(2)),
        "tiled with repeat(2, 1): row not doubled": (lambda row, n: row.expand(n, -1), lambda row: row.repeat(2, 1)),
        "tiled with repeat_interleave": (lambda row, n: row.expand(n, -1),
                                         lambda row: row.repeat_interleave(2).expand(2, -1)),
        "tiled with expand, which cannot double a size": (lambda row, n: row.expand(n, -1),
                                                          lambda row: row.expand(2, 2 * len(row))),
        "types in the example's answer": (lambda row, n: row.expand(n, -1),
                                          lambda row: torch.tensor([[1, 2, 3, 1, 2, 3]] * 2)),
    }),
    lesson01.ex4: ((_center,), {
        "forgets keepdim": (lambda x: (x.mean(dim=(2, 3)), x - x.mean(dim=(2, 3), keepdim=True)),),
        "subtracts the means without keepdim": (lambda x: (x.mean(dim=(2, 3), keepdim=True),
                                                            x - x.mean(dim=(2, 3))),),
        "averages the whole image, all channels": (lambda x: (x.mean(dim=(1, 2, 3), keepdim=True),
                                                               x - x.mean(dim=(1, 2, 3), keepdim=True)),),
        "averages each channel over the batch, like BatchNorm": (
            lambda x: (x.mean(dim=(0, 2, 3), keepdim=True), x - x.mean(dim=(0, 2, 3), keepdim=True)),),
        "averages over h only": (lambda x: (x.mean(dim=2, keepdim=True), x - x.mean(dim=2, keepdim=True)),),
        "right means, centered by the mean of each row": (lambda x: (x.mean(dim=(2, 3), keepdim=True),
                                                                      x - x.mean(dim=3, keepdim=True)),),
        "subtracts in place, overwriting imgs": (_center_in_place,),
        "returns centered alone": (lambda x: x - x.mean(dim=(2, 3), keepdim=True),),
    }),
    lesson01.ex5: ((_passes,), {
        "> 60 misses a mark of exactly 60": (lambda m: _passes(m, at_least=False),),
        "counts per exam (dim=0)": (lambda m: _passes(m, count_dim=0),),
        "counts all passes together": (lambda m: (m[m >= 60], (m >= 60).sum()),),
        "keeps the shape, zeros for the fails": (lambda m: (m * (m >= 60), (m >= 60).sum(dim=1)),),
        "collects column by column": (lambda m: (m.t()[m.t() >= 60], (m >= 60).sum(dim=1)),),
        "types in the example's answer": (lambda m: (torch.tensor([72.0, 60.0, 91.0, 80.0, 66.0, 61.0]),
                                                     torch.tensor([2, 3, 1])),),
    }),
    lesson01.ex6: ((_to_chw,), {
        "view instead of permute": (lambda x: (x.view(x.size(0), x.size(3), x.size(1), x.size(2)),
                                               x.reshape(x.size(0), -1)),),
        "reshape instead of permute": (lambda x: (x.reshape(x.size(0), x.size(3), x.size(1), x.size(2)),
                                                  x.reshape(x.size(0), -1)),),
        "transpose(1, 3): [b, c, w, h]": (lambda x: (x.transpose(1, 3), x.transpose(1, 3).reshape(x.size(0), -1)),),
        "permute(0, 2, 3, 1), the inverse order": (lambda x: (x.permute(0, 2, 3, 1),
                                                              x.permute(0, 2, 3, 1).reshape(x.size(0), -1)),),
        "flattens hwc instead of chw": (lambda x: (x.permute(0, 3, 1, 2), x.reshape(x.size(0), -1)),),
        "view on the permuted tensor": (lambda x: (x.permute(0, 3, 1, 2), x.permute(0, 3, 1, 2).view(x.size(0), -1)),),
        "flattens the whole batch into one row": (lambda x: (x.permute(0, 3, 1, 2), x.permute(0, 3, 1, 2).flatten()),),
    }),
    lesson01.ex7: ((_top2,), {
        "top-1 accuracy (argmax)": (lambda z, y: (z.argmax(dim=1) == y).float().mean().item(),),
        "the two smallest logits": (lambda z, y: (z.topk(2, dim=1, largest=False).indices == y.unsqueeze(1))
                                    .any(dim=1).float().mean().item(),),
        "divides by the number of top-2 entries": (lambda z, y: (z.topk(2, dim=1).indices == y.unsqueeze(1))
                                                   .float().mean().item(),),
        "compares labels without making them a column": (lambda z, y: (z.topk(2, dim=1).indices == y)
                                                         .any(dim=1).float().mean().item(),),
        "returns a tensor (no .item())": (lambda z, y: (z.topk(2, dim=1).indices == y.unsqueeze(1))
                                          .any(dim=1).float().mean(),),
        "counts the hits instead of the fraction": (lambda z, y: (z.topk(2, dim=1).indices == y.unsqueeze(1))
                                                    .any(dim=1).sum().item(),),
        "types in the example's answer": (lambda z, y: 0.5,),
    }),
}

test_model_answers, test_wrong_answers = exercise_tests(LESSON01)
