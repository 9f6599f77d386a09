"""The checks of lesson 05's exercises (convolutional networks)."""

import torch
import torch.nn.functional as F
from torch import nn

from ..check import CheckFailed, check, exercise, forbidding
from ..models import count_parameters

# What Exercise 1 must do without: the library's convolution, and the unfold trick.
_FORBIDDEN = ("torch.nn.functional.conv2d", "torch.conv2d", "torch.nn.functional.unfold", "torch.Tensor.unfold")


@exercise("Exercise 1")
def ex1(my_conv2d):
    g = torch.Generator().manual_seed(5)
    for n, c_in, c_out, h, w, k, stride, padding in [(2, 3, 4, 7, 6, 3, 1, 0), (1, 2, 3, 8, 8, 3, 2, 1),
                                                     (2, 1, 2, 5, 9, 2, 3, 2)]:
        x = torch.randn(n, c_in, h, w, generator=g)
        weight = torch.randn(c_out, c_in, k, k, generator=g)
        bias = torch.randn(c_out, generator=g)
        expected = F.conv2d(x, weight, bias, stride=stride, padding=padding)
        with forbidding(_FORBIDDEN, "my_conv2d", hint="compute each output number as a sum of products"):
            got = my_conv2d(x, weight, bias, stride, padding)
        case = f"my_conv2d on {c_in}->{c_out} channels, {h}×{w}, k={k}, stride={stride}, padding={padding}"
        if isinstance(got, torch.Tensor) and got.shape != expected.shape:
            raise CheckFailed(f"{case}: output shape {tuple(got.shape)}, expected {tuple(expected.shape)}\n"
                              "hint: [N, C_out, H_out, W_out], with H_out and W_out from section 4's formula "
                              "(the padding adds to both sides)")
        check(got, expected, case,
              hint="section 3: each output channel sums over every input channel and the whole window "
                   "(the kernel is not flipped), then adds its own bias")


@exercise("Exercise 2")
def ex2(ex2):
    check(type(ex2).__name__, "int", "the answer is a Python int",
          hint="write the count as arithmetic on integers, one term per layer")
    block = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                          nn.Conv2d(64, 128, 3, bias=False), nn.BatchNorm2d(128))
    check(ex2, count_parameters(block), "the block's number of trainable parameters", reveal=False,
          hint="count each layer's weights and biases on its own; which layers have a bias, and what does "
               "BatchNorm learn (its running statistics are buffers)?")


@exercise("Exercise 3")
def ex3(ex3):
    check(type(ex3).__name__, "tuple", "the answer is a tuple", hint="write it like (8, 3, 64, 64)")
    net = nn.Sequential(nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.MaxPool2d(3, stride=2, ceil_mode=True),
                        nn.Conv2d(16, 32, 3, dilation=2))
    expected = tuple(net(torch.zeros(8, 3, 64, 64)).shape)
    check(len(ex3), 4, "4 dimensions: (batch, channels, height, width)")
    check([type(v).__name__ for v in ex3], ["int"] * 4, "four ints",
          hint="a size is a whole number: use // or conv_output_size, not /")
    check(ex3[:2], expected[:2], "batch size and channels", reveal=False,
          hint="the batch size does not change; the channels come from the last layer")
    check(ex3, expected, "the output shape", reveal=False,
          hint="apply the formula once per layer, minding the pooling's ceil_mode and what dilation does "
               "to the kernel's span")


@exercise("Exercise 4")
def ex4(ex4):
    check(tuple(torch.as_tensor(ex4).shape), (3, 3), "a 3×3 kernel")
    k = torch.as_tensor(ex4, dtype=torch.float32).view(1, 1, 3, 3)
    flat = torch.full((1, 1, 6, 6), 0.7)
    check(F.conv2d(flat, k), torch.zeros(1, 1, 4, 4), "zero on a constant image", reveal=False,
          hint="what must the weights add up to?")
    ramp_down = torch.arange(6.).view(1, 1, 6, 1).expand(1, 1, 6, 6)  # brighter row by row, top to bottom
    ramp_right = ramp_down.transpose(2, 3)                             # brighter column by column, left to right
    check(bool((F.conv2d(ramp_down, k) > 0).all()), True, "positive where it gets brighter downwards",
          hint="which rows of the window see the brighter pixels? PyTorch does not flip the kernel")
    check(bool((F.conv2d(ramp_down.flip(2), k) < 0).all()), True, "negative where it gets darker downwards")
    check(F.conv2d(ramp_right, k), torch.zeros(1, 1, 4, 4), "blind to left-right changes", reveal=False,
          hint="the kernel should only compare rows: what must each column's weights add up to?")
