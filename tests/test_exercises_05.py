"""Lesson 05's exercise checks: the model answer passes, the wrong answers learners really
give fail (tests/exercise_harness.py). A check that let one through would teach the learner
that the wrong answer is right.
"""
import torch
import torch.nn.functional as F
from exercise_harness import exercise_tests

from helpers.exercises import lesson05


def _conv_by_hand(x, weight, bias, stride=1, padding=0, flip=False, add_bias=True, channels=None, plus_one=1):
    """A hand-written convolution and the slips learners make in it."""
    x = F.pad(x, (padding,) * 4)
    n, _, h, w = x.shape
    c_out, c_in, kh, kw = weight.shape
    weight = weight.flip(2, 3) if flip else weight
    out = torch.empty(n, c_out, (h - kh) // stride + plus_one, (w - kw) // stride + plus_one)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = x[:, :channels, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = torch.einsum("nchw,ochw->no", window, weight[:, :channels])
    return out + bias.view(1, -1, 1, 1) if add_bias else out


def _forgets_the_return(x, weight, bias, stride=1, padding=0):
    out = _conv_by_hand(x, weight, bias, stride, padding)  # noqa: F841  (computed, never returned)


LESSON05 = {
    lesson05.ex1: ((_conv_by_hand,), {
        "calls F.conv2d after all": (lambda x, w, b, s=1, p=0: F.conv2d(x, w, b, s, p),),
        "flips the kernel (a true convolution)": (lambda *a: _conv_by_hand(*a, flip=True),),
        "forgets the bias": (lambda *a: _conv_by_hand(*a, add_bias=False),),
        "ignores the stride": (lambda x, w, b, s=1, p=0: _conv_by_hand(x, w, b, 1, p),),
        "sums over the first input channel only": (lambda *a: _conv_by_hand(*a, channels=1),),
        "ignores the padding": (lambda x, w, b, s=1, p=0: _conv_by_hand(x, w, b, s, 0),),
        "forgets the + 1 of the output size": (lambda *a: _conv_by_hand(*a, plus_one=0),),
        "drops the batch dimension": (lambda *a: _conv_by_hand(*a)[0],),
        "adds the bias once per input channel": (
            lambda x, w, b, s=1, p=0: _conv_by_hand(x, w, b * x.shape[1], s, p),),
        "forgets the return": (_forgets_the_return,),
    }),
    lesson05.ex2: (((64 * 3 * 3 * 3 + 64) + 2 * 64 + (128 * 64 * 3 * 3) + 2 * 128,), {
        "leaves BatchNorm out": ((64 * 3 * 3 * 3 + 64) + (128 * 64 * 3 * 3),),
        "counts the running statistics too": ((64 * 3 * 3 * 3 + 64) + 4 * 64 + (128 * 64 * 3 * 3) + 4 * 128,),
        "gives the second conv a bias": ((64 * 3 * 3 * 3 + 64) + 2 * 64 + (128 * 64 * 3 * 3 + 128) + 2 * 128,),
        "a float": (float((64 * 3 * 3 * 3 + 64) + 2 * 64 + (128 * 64 * 3 * 3) + 2 * 128),),
        "kernel depth 3 everywhere (\"3 because images are RGB\")":
            ((64 * 3 * 3 * 3 + 64) + 2 * 64 + (128 * 3 * 3 * 3) + 2 * 128,),
        "kernel depth 1 (one 3×3 kernel per output channel)":
            ((64 * 3 * 3 + 64) + 2 * 64 + (128 * 3 * 3) + 2 * 128,),
        "forgets the first conv's bias": ((64 * 3 * 3 * 3) + 2 * 64 + (128 * 64 * 3 * 3) + 2 * 128,),
        "counts num_batches_tracked too": ((64 * 3 * 3 * 3 + 64) + (2 * 64 + 1) + (128 * 64 * 3 * 3) + (2 * 128 + 1),),
        "a tensor": (torch.tensor((64 * 3 * 3 * 3 + 64) + 2 * 64 + (128 * 64 * 3 * 3) + 2 * 128),),
    }),
    lesson05.ex3: (((8, 32, 12, 12),), {
        "floor instead of ceil_mode's ceiling": ((8, 32, 11, 11),),
        "ignores the dilation": ((8, 32, 14, 14),),
        "keeps the first conv's channels": ((8, 16, 12, 12),),
        "a list": ([8, 32, 12, 12],),
        "forgets the batch": ((32, 12, 12),),
        "H - k + 1 for every layer": ((8, 32, 56, 56),),
        "takes the pool's stride to be its size": ((8, 32, 7, 7),),
        "floats from /": ((8, 32, 12.0, 12.0),),
        "channels last": ((8, 12, 12, 32),),
    }),
    lesson05.ex4: ((torch.tensor([[-1., -2, -1], [0, 0, 0], [1, 2, 1]]),), {
        "the sign turned round": (torch.tensor([[1., 2, 1], [0, 0, 0], [-1, -2, -1]]),),
        "Sobel x: vertical edges": (torch.tensor([[-1., 0, 1], [-2, 0, 2], [-1, 0, 1]]),),
        "weights that do not add up to zero": (torch.tensor([[0., 0, 0], [0, 0, 0], [1, 2, 1]]),),
        "a 2x2 kernel": (torch.tensor([[-1., -1], [1, 1]]),),
        "a Laplacian: edges in every direction": (torch.tensor([[-1., -1, -1], [-1, 8, -1], [-1, -1, -1]]),),
        "a diagonal edge": (torch.tensor([[-1., -1, 0], [-1, 0, 1], [0, 1, 1]]),),
        "a [1, 1, 3, 3] conv weight": (torch.tensor([[[[-1., -2, -1], [0, 0, 0], [1, 2, 1]]]]),),
        "blur plus Sobel y: not zero on flat regions": (torch.tensor([[0., -1, 0], [1, 2, 1], [2, 3, 2]]) / 4,),
    }),
}

test_model_answers, test_wrong_answers = exercise_tests(LESSON05)
