"""Lesson 07's exercise checks: the model answer passes, the wrong answers learners really
give fail (tests/exercise_harness.py). A check that let one through would teach the learner
that the wrong answer is right.
"""
import torch
import torch.nn.functional as F
from exercise_harness import exercise_tests
from torch import nn

from helpers.exercises import lesson07

# ------------------------------------------------------------------------------ Exercise 1
VGG_BLOCK = (256 * 128 * 9 + 2 * 256) + (256 * 256 * 9 + 2 * 256) + (256 * 256 * 9 + 2 * 256)


# ------------------------------------------------------------------------------ Exercise 2
def residual_block(body_relu=False, relu_each=False, final_relu=True, stride_in_second=False,
                   projection="shape", shortcut_bn=True, bias=False, no_shortcut=False):
    """A MyResidualBlock, right by default, with the slips learners make switched on by name."""

    class Block(nn.Module):
        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__()
            first, second = (1, stride) if stride_in_second else (stride, 1)
            layers = [nn.Conv2d(in_channels, out_channels, 3, first, 1, bias=bias), nn.BatchNorm2d(out_channels),
                      nn.ReLU(), nn.Conv2d(out_channels, out_channels, 3, second, 1, bias=bias),
                      nn.BatchNorm2d(out_channels)]
            self.body = nn.Sequential(*layers, *([nn.ReLU()] if body_relu else []))
            needs = {"shape": stride != 1 or in_channels != out_channels, "channels": in_channels != out_channels,
                     "always": True}[projection]
            self.shortcut = nn.Identity()
            if needs:
                self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                              *([nn.BatchNorm2d(out_channels)] if shortcut_bn else []))

        def forward(self, x):
            if no_shortcut:
                return F.relu(self.body(x))
            if relu_each:
                return F.relu(self.body(x)) + F.relu(self.shortcut(x))
            out = self.body(x) + self.shortcut(x)
            return F.relu(out) if final_relu else out

    return Block


class ShortcutBNFirst(nn.Module):
    """The projection's BN before its 1×1 convolution."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.body = residual_block()(in_channels, out_channels, stride).body
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.BatchNorm2d(in_channels),
                                          nn.Conv2d(in_channels, out_channels, 1, stride, bias=False))

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


# ------------------------------------------------------------------------------ Exercise 3
def grouped(c_in, c_out, k, groups):
    return k * k * (c_in // groups) * c_out + c_out


# ------------------------------------------------------------------------------ Exercise 4
def separable(c_in, c_out, k, size):
    return (k * k * c_in + c_in * c_out) * size * size


# ------------------------------------------------------------------------------ Exercise 5
def spatial_attention(order=("mean", "max"), dim=1, squash=torch.sigmoid, padding=True, bias=True, keepdim=True,
                      returns="scaled", in_channels=2, use_max_values=True):
    """A MySpatialAttention, right by default, with the slips learners make switched on by name."""

    class SpatialAttention(nn.Module):
        def __init__(self, kernel_size=7):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, 1, kernel_size, padding=kernel_size // 2 if padding else 0, bias=bias)

        def forward(self, x):
            maps = {"mean": x.mean(dim=dim, keepdim=keepdim),
                    "max": x.amax(dim=dim, keepdim=keepdim) if use_max_values else x.max(dim=dim, keepdim=keepdim)}
            pooled = torch.cat([maps[name] for name in order], dim=1)
            weights = squash(self.conv(pooled))
            return weights if returns == "weights" else x * weights

    return SpatialAttention


def softmax_over_pixels(t):
    return torch.softmax(t.flatten(2), dim=-1).view_as(t)


LESSON07 = {
    lesson07.ex1: ((VGG_BLOCK,), {
        "gives each conv a bias": (VGG_BLOCK + 3 * 256,),
        "counts BatchNorm's running statistics": (VGG_BLOCK + 3 * 2 * 256,),
        "leaves BatchNorm out": (VGG_BLOCK - 3 * 2 * 256,),
        "every conv from 128 channels": (3 * (256 * 128 * 9 + 2 * 256),),
        "every conv from 256 channels": (3 * (256 * 256 * 9 + 2 * 256),),
        "section 2's block (64 -> 128, two convs)": ((128 * 64 * 9 + 2 * 128) + (128 * 128 * 9 + 2 * 128),),
        "forgets the kernel's 3x3": ((256 * 128 + 2 * 256) + 2 * (256 * 256 + 2 * 256),),
        "a float": (float(VGG_BLOCK),),
    }),
    lesson07.ex2: ((residual_block(),), {
        "body ends in ReLU, then relu(F(x)) + relu(shortcut(x)) (the old check let it pass)":
            (residual_block(body_relu=True, relu_each=True),),
        "body ends in ReLU (ReLU before the addition)": (residual_block(body_relu=True),),
        "relu(F(x)) + relu(shortcut(x))": (residual_block(relu_each=True),),
        "no ReLU after the addition": (residual_block(final_relu=False),),
        "the stride in the second convolution": (residual_block(stride_in_second=True),),
        "a projection only when the channels change": (residual_block(projection="channels"),),
        "a projection always": (residual_block(projection="always"),),
        "a projection without BN": (residual_block(shortcut_bn=False),),
        "convolutions with bias": (residual_block(bias=True),),
        "no shortcut at all": (residual_block(no_shortcut=True),),
        "the projection's BN before its conv": (ShortcutBNFirst,),
    }),
    lesson07.ex3: ((grouped,), {
        "forgets to divide by the groups": (lambda c_in, c_out, k, groups: k * k * c_in * c_out + c_out,),
        "divides the output channels too":
            (lambda c_in, c_out, k, groups: k * k * (c_in // groups) * (c_out // groups) + c_out,),
        "forgets the bias": (lambda c_in, c_out, k, groups: k * k * (c_in // groups) * c_out,),
        "one bias per group": (lambda c_in, c_out, k, groups: k * k * (c_in // groups) * c_out + groups,),
        "k instead of k²": (lambda c_in, c_out, k, groups: k * (c_in // groups) * c_out + c_out,),
        "multiplies by the groups": (lambda c_in, c_out, k, groups: k * k * c_in * c_out * groups + c_out,),
        "a float (c_in / groups)": (lambda c_in, c_out, k, groups: k * k * (c_in / groups) * c_out + c_out,),
        "builds the layer and returns it": (lambda c_in, c_out, k, groups: nn.Conv2d(c_in, c_out, k, groups=groups),),
    }),
    lesson07.ex4: ((separable,), {
        "a standard convolution's MACs": (lambda c_in, c_out, k, size: k * k * c_in * c_out * size * size,),
        "per output position only": (lambda c_in, c_out, k, size: k * k * c_in + c_in * c_out,),
        "depthwise reads every channel":
            (lambda c_in, c_out, k, size: (k * k * c_in * c_in + c_in * c_out) * size ** 2,),
        "forgets the pointwise part": (lambda c_in, c_out, k, size: k * k * c_in * size * size,),
        "forgets the depthwise part": (lambda c_in, c_out, k, size: c_in * c_out * size * size,),
        "k instead of k²": (lambda c_in, c_out, k, size: (k * c_in + c_in * c_out) * size * size,),
        "a float (size ** 2.0)": (lambda c_in, c_out, k, size: (k * k * c_in + c_in * c_out) * size ** 2.0,),
        "the ratio instead of a count": (lambda c_in, c_out, k, size: 1 / c_out + 1 / k ** 2,),
    }),
    lesson07.ex5: ((spatial_attention(),), {
        "max first, then mean": (spatial_attention(order=("max", "mean")),),
        "pools over the pixels instead of the channels": (spatial_attention(dim=(2, 3)),),
        "no sigmoid": (spatial_attention(squash=lambda t: t),),
        "ReLU instead of sigmoid": (spatial_attention(squash=torch.relu),),
        "softmax over the pixels": (spatial_attention(squash=softmax_over_pixels),),
        "no padding (the map shrinks)": (spatial_attention(padding=False),),
        "a convolution without bias": (spatial_attention(bias=False),),
        "forgets keepdim": (spatial_attention(keepdim=False),),
        "returns the weights, not x scaled": (spatial_attention(returns="weights"),),
        "mean only (a 1-channel convolution)": (spatial_attention(order=("mean",), in_channels=1),),
        "x.max(dim=1) returns (values, indices)": (spatial_attention(use_max_values=False),),
    }),
}

test_model_answers, test_wrong_answers = exercise_tests(LESSON07)
