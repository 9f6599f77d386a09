"""The course's models, each first built in the open in its lesson."""
import contextlib
import difflib
import hashlib
import math
import numbers
import os
import warnings

import torch
from torch import nn

from .check import clean_message


def _whole(value, name: str, minimum: int) -> int:
    """``value`` as an int (NumPy integers too), or a ValueError naming it; bools are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = "a positive int" if minimum == 1 else "a non-negative int"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """The height (or width) after a convolution or pooling layer (lesson 05):
    ``floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``.

    ``ceil_mode=True`` rounds up, as pooling layers do with that flag, except that the last
    window must start inside the input or its left padding: PyTorch's rule. A result below 1
    (a window bigger than the padded input) is a ValueError, as it is in PyTorch.
    """
    size, kernel_size, stride, dilation = (_whole(v, n, 1) for v, n in (
        (size, "size"), (kernel_size, "kernel_size"), (stride, "stride"), (dilation, "dilation")))
    padding = _whole(padding, "padding", 0)
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:  # the last window would start in the right padding
        out -= 1
    if out < 1:
        raise ValueError(f"the window ({dilation * (kernel_size - 1) + 1} pixels with dilation {dilation}) "
                         f"is larger than the padded input ({size} + 2*{padding})")
    return out


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    """3x3 convolution (padding 1, no bias: BN has one), batch norm, ReLU (lesson 05); other odd
    ``kernel_size``s get padding ``kernel_size // 2`` (lesson 07). ``[b, in, h, w] => [b, out, h, w]``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Lesson 05's CIFAR-10 network: conv-BN-ReLU blocks with a 2x2 max-pool between them,
    global max-pooling and one linear layer (reused in lessons 06-07).

    ``widths=(32, 64, 128, 256)`` on ``[b, 3, 32, 32]``: the blocks see 32x32, 16x16, 8x8, 4x4.
    Pooling early keeps it cheap: each later block has 2x the channels on 1/4 of the pixels.
    """

    def __init__(self, widths=(32, 64, 128, 256), in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        layers, width = [conv_bn_relu(in_channels, widths[0])], widths[0]  # [b, c, h, w] => [b, w0, h, w]
        for w in widths[1:]:
            layers += [nn.MaxPool2d(2), conv_bn_relu(width, w)]                 # => [b, w, h/2, w/2]
            width = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveMaxPool2d(1),          # => [b, width, 1, 1]
            nn.Flatten(),                     # => [b, width]
            nn.Linear(width, num_classes),    # => [b, 10] logits
        )

    def forward(self, x):
        return self.head(self.features(x))


class MLP(nn.Module):
    """A multilayer perceptron for flattened images (lesson 04).

    ``MLP(784, [256, 128], 10)``: 784 -> 256 -> ReLU -> 128 -> ReLU -> 10 logits.
    """

    def __init__(self, in_features: int = 784, hidden=(256, 128), out_features: int = 10,
                 activation=nn.ReLU, dropout: float = 0.0):
        super().__init__()
        layers, width = [nn.Flatten()], in_features  # [b, 1, 28, 28] => [b, 784]
        for h in hidden:
            layers += [nn.Linear(width, h), activation()]  # [b, width] => [b, h]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))  # [b, width] => [b, out] logits
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) with ReLU and max-pooling, for 1x28x28 or 3x32x32
    images (lesson 05)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        pad = 2 if image_size == 28 else 0  # MNIST: pad 28x28 to LeNet's 32x32
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad),  # [b, c, 32, 32] => [b, 6, 28, 28]
            nn.ReLU(),
            nn.MaxPool2d(2),                            # => [b, 6, 14, 14]
            nn.Conv2d(6, 16, 5),                        # => [b, 16, 10, 10]
            nn.ReLU(),
            nn.MaxPool2d(2),                            # => [b, 16, 5, 5]
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),                               # => [b, 400]
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),      # => [b, 120]
            nn.Linear(120, 84), nn.ReLU(),              # => [b, 84]
            nn.Linear(84, num_classes),                 # => [b, 10] logits
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class AlexNet(nn.Module):
    """AlexNet's ideas (Krizhevsky et al., 2012) scaled to 32x32 images (lesson 07): five
    convolutions with a bigger first kernel, ReLU, three max-pools and a dropout MLP head."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 5, padding=2), nn.ReLU(inplace=True),  # [b, 3, 32, 32] => [b, 64, 32, 32]
            nn.MaxPool2d(2),                                                  # => [b, 64, 16, 16]
            nn.Conv2d(64, 128, 5, padding=2), nn.ReLU(inplace=True),          # => [b, 128, 16, 16]
            nn.MaxPool2d(2),                                                  # => [b, 128, 8, 8]
            nn.Conv2d(128, 256, 3, padding=1), nn.ReLU(inplace=True),         # => [b, 256, 8, 8]
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),         # => [b, 256, 8, 8]
            nn.Conv2d(256, 128, 3, padding=1), nn.ReLU(inplace=True),         # => [b, 128, 8, 8]
            nn.MaxPool2d(2),                                                  # => [b, 128, 4, 4]
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),                                                     # => [b, 2048]
            nn.Dropout(dropout), nn.Linear(128 * 4 * 4, 512), nn.ReLU(inplace=True),  # => [b, 512]
            nn.Dropout(dropout), nn.Linear(512, 512), nn.ReLU(inplace=True),  # => [b, 512]
            nn.Linear(512, num_classes),                                      # => [b, 10] logits
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def vgg_block(in_channels: int, out_channels: int, num_convs: int) -> nn.Sequential:
    """A VGG block (Simonyan & Zisserman, 2014), lesson 07: ``num_convs`` x [3x3 conv, BN, ReLU],
    then a 2x2 max-pool. ``[b, in, h, w] => [b, out, h/2, w/2]``."""
    layers = [conv_bn_relu(in_channels if i == 0 else out_channels, out_channels)  # => [b, out, h, w]
              for i in range(num_convs)]
    return nn.Sequential(*layers, nn.MaxPool2d(2))                                  # => [b, out, h/2, w/2]


class VGG(nn.Module):
    """VGG (Simonyan & Zisserman, 2014) for 32x32 images, lesson 07: blocks of 3x3 convolutions,
    ``config`` = ((num_convs, channels), ...); the default is VGG-11 (with batch norm)."""

    def __init__(self, config=((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)), num_classes: int = 10,
                 in_channels: int = 3):
        super().__init__()
        blocks, width = [], in_channels
        for num_convs, channels in config:
            blocks.append(vgg_block(width, channels, num_convs))  # [b, width, h, w] => [b, channels, h/2, w/2]
            width = channels
        self.features = nn.Sequential(*blocks)  # 5 blocks: [b, 3, 32, 32] => [b, 512, 1, 1]
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),            # => [b, 512, 1, 1] (for configs that stop above 1x1)
            nn.Flatten(),                       # => [b, 512]
            nn.Linear(width, num_classes),      # => [b, 10] logits
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class Inception(nn.Module):
    """The Inception block of GoogLeNet (Szegedy et al., 2015), lesson 07: four branches side by
    side, concatenated on channels. The 1x1 convolutions reduce the channels before the 3x3 and
    5x5 ones, which keeps them cheap. ``c2`` and ``c3`` are (reduce, out)."""

    def __init__(self, in_channels: int, c1: int, c2, c3, c4: int):
        super().__init__()
        self.branch1 = conv_bn_relu(in_channels, c1, 1)  # [b, in, h, w] => [b, c1, h, w]
        self.branch2 = nn.Sequential(
            conv_bn_relu(in_channels, c2[0], 1),          # => [b, c2[0], h, w]
            conv_bn_relu(c2[0], c2[1], 3),                # => [b, c2[1], h, w]
        )
        self.branch3 = nn.Sequential(
            conv_bn_relu(in_channels, c3[0], 1),          # => [b, c3[0], h, w]
            conv_bn_relu(c3[0], c3[1], 5),                # => [b, c3[1], h, w]
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1),         # => [b, in, h, w]
            conv_bn_relu(in_channels, c4, 1),             # => [b, c4, h, w]
        )
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x):
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([branch(x) for branch in branches], dim=1)  # => [b, out_channels, h, w]


class GoogLeNet(nn.Module):
    """A compact GoogLeNet (Szegedy et al., 2015) for 32x32 images, lesson 07: a 3x3 stem,
    four Inception blocks at 16x16, 8x8 and 4x4, global average pooling and one linear layer."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(
            conv_bn_relu(in_channels, 64),                # [b, 3, 32, 32] => [b, 64, 32, 32]
            nn.MaxPool2d(2),                              # => [b, 64, 16, 16]
        )
        self.blocks = nn.Sequential(
            Inception(64, 32, (48, 64), (8, 16), 16),     # => [b, 128, 16, 16]
            nn.MaxPool2d(2),                              # => [b, 128, 8, 8]
            Inception(128, 64, (64, 96), (16, 48), 32),   # => [b, 240, 8, 8]
            Inception(240, 96, (48, 104), (8, 24), 32),   # => [b, 256, 8, 8]
            nn.MaxPool2d(2),                              # => [b, 256, 4, 4]
            Inception(256, 112, (64, 144), (16, 32), 32),  # => [b, 320, 4, 4]
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),                      # => [b, 320, 1, 1]
            nn.Flatten(),                                 # => [b, 320]
            nn.Linear(320, num_classes),                  # => [b, 10] logits
        )

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


class ResidualBlock(nn.Module):
    """The basic block of ResNet-18/34 (He et al., 2016): two 3x3 convolutions and a
    shortcut, ``relu(F(x) + shortcut(x))`` (lesson 07). ``shortcut=False`` keeps the same
    convolutions without the addition (and without the 1x1 projection): a "plain" block."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, shortcut: bool = True):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),  # [b, in, h, w] => [b, out, h/s, w/s]
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),      # same shape
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = None
        if shortcut:
            self.shortcut = nn.Identity()
            if stride != 1 or in_channels != out_channels:  # match shapes with a 1x1 convolution
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),  # => [b, out, h/s, w/s]
                    nn.BatchNorm2d(out_channels),
                )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.body(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)


class ResNet(nn.Module):
    """A ResNet for 32x32 images: a 3x3 stem, then stages of basic blocks
    (``blocks=(2, 2, 2, 2)`` is ResNet-18) and global average pooling (lesson 07).
    ``shortcuts=False`` is the "plain" network of the same depth; ``block`` (default
    :class:`ResidualBlock`) builds each block, e.g. :class:`SEResidualBlock`."""

    def __init__(self, blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512), in_channels: int = 3,
                 num_classes: int = 10, shortcuts: bool = True, block=None):
        super().__init__()
        block = block or ResidualBlock  # any class called as block(in, out, stride, shortcut): SEResidualBlock
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),  # [b, 3, 32, 32] => [b, w0, 32, 32]
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages, width = [], widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            stride = 1 if i == 0 else 2  # each later stage halves h and w: => [b, w, h/2, w/2]
            stages += [block(width, w, stride, shortcuts)]
            stages += [block(w, w, 1, shortcuts) for _ in range(n - 1)]
            width = w
        self.stages = nn.Sequential(*stages)  # four stages: => [b, w3, 4, 4]
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),           # => [b, w3, 1, 1]
            nn.Flatten(),                      # => [b, w3]
            nn.Linear(width, num_classes),     # => [b, 10] logits
        )

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


def resnet18(num_classes: int = 10, in_channels: int = 3, shortcuts: bool = True) -> ResNet:
    """ResNet-18 (He et al., 2016) for 32x32 inputs (CIFAR-10), lesson 07."""
    return ResNet((2, 2, 2, 2), (64, 128, 256, 512), in_channels, num_classes, shortcuts)


def cifar_resnet(depth: int = 20, shortcuts: bool = True, num_classes: int = 10, width: int = 16) -> ResNet:
    """He et al.'s (2016) CIFAR ResNet, lesson 07: ``depth = 6n + 2`` layers (a stem, three
    stages of n blocks of two 3x3 convolutions at widths (16, 32, 64) * width/16, a linear layer).
    Where the shape changes the shortcut is a 1x1 projection (their option B)."""
    n, width = _cifar_blocks(depth, width)
    return ResNet((n, n, n), (width, 2 * width, 4 * width), 3, num_classes, shortcuts)  # 32x32, 16x16, 8x8


def _cifar_blocks(depth, width) -> tuple[int, int]:
    """(blocks per stage, width) of a CIFAR ResNet of ``depth = 6n + 2`` layers, both checked."""
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"cifar_resnet's depth must be 6n + 2 (8, 14, 20, 32, 44, 56, 110, ...), got {depth!r}")
    return (int(depth) - 2) // 6, _whole(width, "cifar_resnet's width", 1)


class ResNet9(nn.Module):
    """The fast "ResNet-9" of the DAWNBench CIFAR-10 records (Myrtle.ai, David Page, 2018),
    lesson 07: few layers, wide, two residual pairs of 3x3 convolutions, global max-pooling
    and logits scaled by 1/8. ``width`` scales the channels (64, 128, 256, 512)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 64):
        super().__init__()
        w1, w2, w3, w4 = width, 2 * width, 4 * width, 8 * width
        self.prep = conv_bn_relu(in_channels, w1)                         # [b, 3, 32, 32] => [b, 64, 32, 32]
        self.layer1 = nn.Sequential(conv_bn_relu(w1, w2), nn.MaxPool2d(2))  # => [b, 128, 16, 16]
        self.res1 = nn.Sequential(conv_bn_relu(w2, w2), conv_bn_relu(w2, w2))  # same shape, added
        self.layer2 = nn.Sequential(conv_bn_relu(w2, w3), nn.MaxPool2d(2))  # => [b, 256, 8, 8]
        self.layer3 = nn.Sequential(conv_bn_relu(w3, w4), nn.MaxPool2d(2))  # => [b, 512, 4, 4]
        self.res3 = nn.Sequential(conv_bn_relu(w4, w4), conv_bn_relu(w4, w4))  # same shape, added
        self.head = nn.Sequential(
            nn.AdaptiveMaxPool2d(1),                                      # => [b, 512, 1, 1]
            nn.Flatten(),                                                 # => [b, 512]
            nn.Linear(w4, num_classes, bias=False),                       # => [b, 10] logits (x 0.125)
        )

    def forward(self, x):
        x = self.layer1(self.prep(x))
        x = x + self.res1(x)
        x = self.layer3(self.layer2(x))
        x = x + self.res3(x)
        return self.head(x) * 0.125


def resnet9(num_classes: int = 10, in_channels: int = 3, width: int = 64) -> ResNet9:
    """The DAWNBench ResNet-9 for CIFAR-10: the course's fast CIFAR network (lesson 07)."""
    return ResNet9(num_classes, in_channels, width)


class DenseBlock(nn.Module):
    """A dense block of DenseNet (Huang et al., 2017), lesson 07: each layer (BN-ReLU-3x3 conv)
    makes ``growth_rate`` new channels and concatenates them to everything before it.
    ``[b, in, h, w] => [b, in + num_layers * growth_rate, h, w]``."""

    def __init__(self, in_channels: int, growth_rate: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.BatchNorm2d(in_channels + i * growth_rate),
                nn.ReLU(inplace=True),
                nn.Conv2d(in_channels + i * growth_rate, growth_rate, 3, padding=1, bias=False),  # => [b, k, h, w]
            )
            for i in range(num_layers)
        )
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x):
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)  # [b, c, h, w] => [b, c + k, h, w]
        return x


def transition(in_channels: int, out_channels: int) -> nn.Sequential:
    """DenseNet's transition layer (lesson 07): BN-ReLU-1x1 conv, then a 2x2 average pool.
    ``[b, in, h, w] => [b, out, h/2, w/2]``."""
    return nn.Sequential(
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),  # => [b, out, h, w]
        nn.AvgPool2d(2),                                      # => [b, out, h/2, w/2]
    )


class DenseNet(nn.Module):
    """A compact DenseNet (Huang et al., 2017) for 32x32 images, lesson 07: a 3x3 stem of
    2 * growth_rate channels and a 2x2 max-pool (their ImageNet stem downsamples too; it makes
    the net 3-4x faster on a CPU), dense blocks joined by transitions that halve the channels and
    the resolution, then BN-ReLU, global average pooling and a linear layer."""

    def __init__(self, growth_rate: int = 12, blocks=(6, 6, 6), num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        width = 2 * growth_rate
        layers = [
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),  # [b, 3, 32, 32] => [b, 2k, 32, 32]
            nn.MaxPool2d(2),                                          # => [b, 2k, 16, 16]
        ]
        for i, num_layers in enumerate(blocks):
            block = DenseBlock(width, growth_rate, num_layers)  # => [b, width + num_layers * k, h, w]
            layers.append(block)
            width = block.out_channels
            if i < len(blocks) - 1:
                layers.append(transition(width, width // 2))  # => [b, width / 2, h/2, w/2]
                width //= 2
        self.features = nn.Sequential(*layers)  # (6, 6, 6), k=12: => [b, 132, 4, 4]
        self.head = nn.Sequential(
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),            # => [b, 132, 1, 1]
            nn.Flatten(),                       # => [b, 132]
            nn.Linear(width, num_classes),      # => [b, 10] logits
        )

    def forward(self, x):
        return self.head(self.features(x))


class DepthwiseSeparableConv(nn.Module):
    """MobileNet's building block (Howard et al., 2017), lesson 07: a 3x3 depthwise convolution
    (one filter per channel, ``groups=in_channels``) then a 1x1 pointwise one that mixes the
    channels, each followed by BN and ReLU. ``[b, in, h, w] => [b, out, h/s, w/s]``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.depthwise = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),  # => [b, in, h/s, w/s]
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
        )
        self.pointwise = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),  # => [b, out, h/s, w/s]
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class MobileNet(nn.Module):
    """A compact MobileNet v1 (Howard et al., 2017) for 32x32 images, lesson 07: a 3x3 stem and
    eight depthwise-separable convolutions, three of them with stride 2 (32x32 => 4x4).
    ``width_mult`` scales every layer's channels (their "width multiplier" alpha)."""

    STAGES = ((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 1), (512, 1))

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0):
        super().__init__()
        if not width_mult > 0:
            raise ValueError(f"MobileNet's width_mult must be positive, got {width_mult!r}")
        width = max(1, round(32 * width_mult))
        layers = [conv_bn_relu(in_channels, width)]  # [b, 3, 32, 32] => [b, 32, 32, 32]
        for channels, stride in self.STAGES:
            channels = max(1, round(channels * width_mult))
            layers.append(DepthwiseSeparableConv(width, channels, stride))  # => [b, channels, h/s, w/s]
            width = channels
        self.features = nn.Sequential(*layers)  # => [b, 512, 4, 4]
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),             # => [b, 512, 1, 1]
            nn.Flatten(),                        # => [b, 512]
            nn.Linear(width, num_classes),       # => [b, 10] logits
        )

    def forward(self, x):
        return self.head(self.features(x))


def _reduced(channels: int, reduction: int) -> int:
    """The hidden width ``channels // reduction`` of a bottleneck, at least 1."""
    return max(1, channels // _whole(reduction, "reduction", 1))


# ------------------------------------------------------------------ lesson 07: the families
def nin_block(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
              last_relu: bool = True) -> nn.Sequential:
    """A Network-in-Network "mlpconv" block (Lin, Chen and Yan, 2013), lesson 07: a k x k
    convolution, then two 1x1 convolutions (a small MLP on each pixel's channels), each with
    ReLU (no batch norm: the original has none). ``last_relu=False`` leaves the last 1x1
    convolution linear, for a block that outputs logits. ``[b, in, h, w] => [b, out, h', w']``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding), nn.ReLU(inplace=True),  # => [b, out, h', w']
        nn.Conv2d(out_channels, out_channels, 1), nn.ReLU(inplace=True),  # 1x1: same shape
        nn.Conv2d(out_channels, out_channels, 1),                         # 1x1: same shape
        *([nn.ReLU(inplace=True)] if last_relu else []),
    )


class NiN(nn.Module):
    """A compact Network in Network (Lin et al., 2013) for 32x32 images, lesson 07: mlpconv
    blocks and max-pools, and no fully-connected head: the last block has one channel per class
    and global average pooling turns each channel into that class's logit."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nin_block(in_channels, 64, 5, padding=2),               # [b, 3, 32, 32] => [b, 64, 32, 32]
            nn.MaxPool2d(2),                                        # => [b, 64, 16, 16]
            nin_block(64, 128, 3, padding=1),                       # => [b, 128, 16, 16]
            nn.MaxPool2d(2),                                        # => [b, 128, 8, 8]
            nin_block(128, 256, 3, padding=1),                      # => [b, 256, 8, 8]
            nn.MaxPool2d(2),                                        # => [b, 256, 4, 4]
            nn.Dropout(dropout),
            nin_block(256, num_classes, 3, padding=1, last_relu=False),  # => [b, 10, 4, 4]: a map per class
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),                                # => [b, 10, 1, 1]
            nn.Flatten(),                                           # => [b, 10] logits
        )

    def forward(self, x):
        return self.head(self.features(x))


class BottleneckBlock(nn.Module):
    """ResNet's bottleneck block (He et al., 2016) and, with ``groups > 1``, ResNeXt's (Xie et
    al., 2017), lesson 07: a 1x1 convolution down to ``width`` channels, a 3x3 convolution
    (``groups`` groups: grouped, 分组卷积), a 1x1 convolution up to ``out_channels``, each with
    BN (ReLU after the first two), added to the shortcut, then ReLU. ResNet-50's block on 256
    channels is ``(256, 256, width=64)``; ResNeXt-50 (32x4d)'s is ``(256, 256, width=128, groups=32)``."""

    def __init__(self, in_channels: int, out_channels: int, width: int, groups: int = 1, stride: int = 1):
        super().__init__()
        if width % groups:
            raise ValueError(f"the bottleneck width ({width}) must be divisible by groups ({groups})")
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 1, bias=False),  # [b, in, h, w] => [b, width, h, w]
            nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False),  # => [b, width, h/s, w/s]
            nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, out_channels, 1, bias=False),  # => [b, out, h/s, w/s]
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),  # => [b, out, h/s, w/s]
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class SEBlock(nn.Module):
    """A squeeze-and-excitation block (Hu, Shen and Sun, 2018), lesson 07: channel attention.
    Squeeze: global average pooling gives one number per channel; excite: a bottleneck MLP
    (C -> C/r -> C, ReLU, then a sigmoid) turns them into one weight in (0, 1) per channel;
    the input's channels are scaled by those weights. ``[b, c, h, w] => [b, c, h, w]``."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = _reduced(channels, reduction)
        self.squeeze = nn.AdaptiveAvgPool2d(1)  # [b, c, h, w] => [b, c, 1, 1]
        self.excite = nn.Sequential(
            nn.Flatten(),                       # => [b, c]
            nn.Linear(channels, hidden),        # => [b, c/r]
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),        # => [b, c]
            nn.Sigmoid(),                       # one weight in (0, 1) per channel
        )

    def forward(self, x):
        weights = self.excite(self.squeeze(x))            # [b, c]
        return x * weights[:, :, None, None]              # [b, c, 1, 1] broadcasts over h, w


class SEResidualBlock(ResidualBlock):
    """:class:`ResidualBlock` with a squeeze-and-excitation block on F(x), before the addition
    (SE-ResNet, Hu et al., 2018), lesson 07: ``relu(SE(F(x)) + shortcut(x))``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, shortcut: bool = True,
                 reduction: int = 4):
        super().__init__(in_channels, out_channels, stride, shortcut)
        self.se = SEBlock(out_channels, reduction)

    def forward(self, x):
        out = self.se(self.body(x))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)


def cifar_se_resnet(depth: int = 20, num_classes: int = 10, width: int = 16, reduction: int = 4) -> ResNet:
    """:func:`cifar_resnet` with an SE block in every residual block (SE-ResNet, lesson 07): the
    same layers plus ``2·C·(C // r) + C // r + C`` parameters per block of C channels."""
    n, width = _cifar_blocks(depth, width)
    reduction = _whole(reduction, "reduction", 1)

    def block(in_channels, out_channels, stride, shortcut):
        return SEResidualBlock(in_channels, out_channels, stride, shortcut, reduction)

    return ResNet((n, n, n), (width, 2 * width, 4 * width), 3, num_classes, True, block=block)


class InvertedResidual(nn.Module):
    """MobileNet v2's inverted residual block (Sandler et al., 2018), lesson 07: a 1x1
    convolution expands the channels ``expansion`` times, a 3x3 depthwise convolution
    (逐通道卷积) filters each channel, a 1x1 convolution (逐点卷积) projects back down with no
    ReLU after it (the "linear bottleneck"); the shortcut adds the input when the shape is
    unchanged. ReLU6 as in the paper. ``depthwise=False`` makes the 3x3 a standard convolution
    over all the expanded channels: the standard-convolution twin of the same widths."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expansion: int = 6,
                 depthwise: bool = True):
        super().__init__()
        hidden = in_channels * _whole(expansion, "expansion", 1)
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),          # [b, in, h, w] => [b, t·in, h, w]
            nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden if depthwise else 1, bias=False),  # => [b, t·in, h/s, w/s]
            nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False),         # => [b, out, h/s, w/s]
            nn.BatchNorm2d(out_channels),                           # no ReLU: a linear bottleneck
        )
        self.use_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x):
        out = self.body(x)
        return x + out if self.use_shortcut else out


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle (Zhang et al., 2018), lesson 07: view the channels as
    ``groups`` rows of ``c / groups``, transpose, flatten, so that each group of the next
    grouped convolution gets channels from every group of the last. ``[b, c, h, w] => [b, c, h, w]``."""
    b, c, h, w = x.shape
    if c % groups:
        raise ValueError(f"channel_shuffle: {c} channels do not split into {groups} groups")
    return (x.view(b, groups, c // groups, h, w)    # [b, g, c/g, h, w]
             .transpose(1, 2)                       # => [b, c/g, g, h, w]
             .reshape(b, c, h, w))                  # => [b, c, h, w], the groups interleaved


class ChannelShuffle(nn.Module):
    """:func:`channel_shuffle` as a layer."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = _whole(groups, "groups", 1)

    def forward(self, x):
        return channel_shuffle(x, self.groups)


class ShuffleUnit(nn.Module):
    """ShuffleNet v1's unit with stride 1 (Zhang et al., 2018), lesson 07: a 1x1 grouped
    convolution down to ``channels // 4``, a channel shuffle, a 3x3 depthwise convolution, a 1x1
    grouped convolution back up, added to the input, then ReLU. ``standard=True`` builds the
    twin with the same widths and ordinary convolutions (groups = 1, no shuffle).
    ``[b, c, h, w] => [b, c, h, w]``."""

    def __init__(self, channels: int, groups: int = 4, standard: bool = False):
        super().__init__()
        mid = channels // 4
        if channels % groups or mid % groups:
            raise ValueError(f"ShuffleUnit: {channels} channels and their quarter {mid} must both be "
                             f"divisible by groups ({groups})")
        g = 1 if standard else groups
        self.body = nn.Sequential(
            nn.Conv2d(channels, mid, 1, groups=g, bias=False),      # [b, c, h, w] => [b, c/4, h, w]
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Identity() if standard else ChannelShuffle(groups),  # same shape, channels interleaved
            nn.Conv2d(mid, mid, 3, padding=1, groups=1 if standard else mid, bias=False),  # => [b, c/4, h, w]
            nn.BatchNorm2d(mid),
            nn.Conv2d(mid, channels, 1, groups=g, bias=False),      # => [b, c, h, w]
            nn.BatchNorm2d(channels),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(x + self.body(x))


class Fire(nn.Module):
    """SqueezeNet's fire module (Iandola et al., 2016), lesson 07: a 1x1 "squeeze" convolution
    to few channels, then 1x1 and 3x3 "expand" convolutions side by side, concatenated.
    ``[b, in, h, w] => [b, expand1x1 + expand3x3, h, w]``."""

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(in_channels, squeeze, 1), nn.ReLU(inplace=True))  # => [b, s, h, w]
        self.expand1x1 = nn.Sequential(nn.Conv2d(squeeze, expand1x1, 1), nn.ReLU(inplace=True))  # => [b, e1, h, w]
        self.expand3x3 = nn.Sequential(nn.Conv2d(squeeze, expand3x3, 3, padding=1), nn.ReLU(inplace=True))  # => [b, e3, h, w]
        self.out_channels = expand1x1 + expand3x3

    def forward(self, x):
        x = self.squeeze(x)
        return torch.cat([self.expand1x1(x), self.expand3x3(x)], dim=1)  # => [b, e1 + e3, h, w]


@contextlib.contextmanager
def _evaluating(model: nn.Module):
    """``model.eval()`` inside the block; then every submodule back to the mode it was in, so a
    frozen part kept in eval mode stays there (lessons 04 and 07)."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


def count_parameters(model: nn.Module) -> int:
    """How many trainable numbers a model has (lesson 04)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


_RNN_GATES = {nn.RNN: 1, nn.GRU: 3, nn.LSTM: 4}
# Layers with weights but (next to a convolution) no multiply-accumulates worth counting.
_NO_MACS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.Embedding, nn.EmbeddingBag,
            nn.PReLU) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())


def _rnn_macs(rnn: nn.RNNBase, x) -> int:
    """Multiply-accumulates of an RNN, GRU or LSTM over a whole sequence: per step, layer and
    direction, ``gates * hidden * (inputs + hidden state)``, plus an LSTM's projection."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"count_macs cannot count {type(rnn).__name__} on a {type(x).__name__} input")
    if x.ndim == 2:
        steps, batch = x.shape[0], 1
    else:
        batch, steps = (x.shape[0], x.shape[1]) if rnn.batch_first else (x.shape[1], x.shape[0])
    gates = next(g for kind, g in _RNN_GATES.items() if isinstance(rnn, kind))
    proj = getattr(rnn, "proj_size", 0)
    state = proj or rnn.hidden_size
    directions = 2 if rnn.bidirectional else 1
    per_step = 0
    for layer in range(rnn.num_layers):
        inputs = rnn.input_size if layer == 0 else state * directions
        per_step += directions * (gates * rnn.hidden_size * (inputs + state) + rnn.hidden_size * proj)
    return steps * batch * per_step


def count_macs(model: nn.Module, input_shape) -> int:
    """Multiply-accumulates of one forward pass of ONE input of ``input_shape`` (e.g. (3, 32, 32)),
    counted over the convolutions (1-d, 2-d, 3-d and transposed, groups included), the Linear
    layers and the RNN/GRU/LSTM layers (lesson 07). Biases, norms and activations are not
    counted; any other layer with weights that runs is named in a warning, since its MACs are
    left out. The model runs in eval mode; each module's mode is restored."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list, torch.Size)) else None
    if not shape or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in shape):
        raise ValueError(f"count_macs: input_shape must be the shape of one input, positive ints such as "
                         f"(3, 32, 32), got {input_shape!r}")
    shape = tuple(int(n) for n in shape)
    macs, uncounted = [], []

    def count(module, inputs, output):
        if isinstance(module, nn.modules.conv._ConvTransposeNd):  # each input number feeds out/groups * k
            macs.append(inputs[0].numel() * module.out_channels // module.groups * math.prod(module.kernel_size))
        elif isinstance(module, nn.modules.conv._ConvNd):  # each output number: in/groups * k products
            macs.append(output.numel() * module.in_channels // module.groups * math.prod(module.kernel_size))
        elif isinstance(module, nn.Linear):                # each output number: in_features products
            macs.append(output.numel() * module.in_features)
        elif isinstance(module, nn.RNNBase):
            macs.append(_rnn_macs(module, inputs[0]))
        else:
            uncounted.append(module)

    counted = (nn.modules.conv._ConvNd, nn.Linear, nn.RNNBase)
    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, counted) or (not isinstance(m, _NO_MACS) and any(True for _ in m.parameters(False)))]
    first = next(model.parameters(), None)
    x = torch.zeros(1, *shape, device=None if first is None else first.device)
    try:
        with _evaluating(model), torch.no_grad():
            model(x)
    except RuntimeError as exc:
        raise ValueError(f"count_macs: the model does not take an input of shape {shape}: "
                         f"{clean_message(exc)}") from None
    finally:
        for hook in hooks:
            hook.remove()
    if uncounted:
        names = sorted({type(m).__name__ for m in uncounted})
        warnings.warn(f"count_macs counts convolutions, Linear and RNN layers only; the MACs of "
                      f"{', '.join(names)} are left out of the total", UserWarning, stacklevel=2)
    return sum(macs)


def _replace_head(model: nn.Module, num_classes: int) -> None:
    """Swap the last Linear layer (a Conv2d where there is none, as in SqueezeNet) for a new one
    with ``num_classes`` outputs."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    name, old = (linears or [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)])[-1]
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, old.padding,
                        bias=old.bias is not None)
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, new)


def _hub_weights(url: str, *args, **kwargs) -> dict:
    """What ``torch.hub.load_state_dict_from_url`` does for torchvision's builders, safely: the
    file in the torch hub cache (``$TORCH_HOME/hub/checkpoints``) is used only when its sha256
    starts with the hash in its name, a download is checked the same way, and the file is read
    with ``torch.load(weights_only=True)``, which runs no code from it (lesson 07)."""
    from urllib.parse import urlparse

    import torch.hub

    from .data import DOWNLOAD_TIMEOUT_S, _socket_timeout  # lazily: models need no dataset code

    name = os.path.basename(urlparse(url).path)
    expected = torch.hub.HASH_REGEX.search(name)
    if expected is None or not expected.group(1):
        raise ValueError(f"{name} carries no hash in its name to check it against")
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", name)
    if not os.path.isfile(cached):
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            torch.hub.download_url_to_file(url, cached, hash_prefix=expected.group(1), progress=False)
    digest = hashlib.sha256()
    with open(cached, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if not digest.hexdigest().startswith(expected.group(1)):
        raise ValueError(f"the cached file {cached} is not the published one (its sha256 does not start with "
                         f"{expected.group(1)}): it is damaged or was replaced. Delete it to download it again")
    return torch.load(cached, map_location="cpu", weights_only=True)


def torchvision_model(name: str, num_classes: int, pretrained: bool = True) -> tuple[nn.Module, bool]:
    """A torchvision model zoo network (e.g. "resnet18", "mobilenet_v3_small", "vgg16") with a new
    final layer for ``num_classes`` (lesson 07). With ``pretrained=True`` it tries the default
    ImageNet weights (the torch hub cache, then a download that gives up after a socket timeout),
    each file checked against the hash in its name and read with ``weights_only=True``; when
    they cannot be had it warns one line and keeps random weights. GoogLeNet and Inception v3
    are built without their auxiliary heads, so they return one tensor of logits.
    Returns (model, weights_loaded)."""
    import torchvision  # lazily: the course's own models (and helpers.train) need none of it
    import torchvision.models._api as zoo_api

    names = torchvision.models.list_models(module=torchvision.models)  # the classification models
    if name not in names:
        close = difflib.get_close_matches(str(name), names, n=3) or ["resnet18", "mobilenet_v3_small", "vgg16"]
        raise ValueError(f"unknown torchvision model {name!r}: try {', '.join(close)} "
                         f"(torchvision.models.list_models() lists all {len(names)})")
    builder = torchvision.models.get_model_builder(name)
    options = {"aux_logits": False} if name in ("googlenet", "inception_v3") else {}
    model, loaded = None, False
    if pretrained:
        try:
            if not hasattr(zoo_api, "load_state_dict_from_url"):  # where the builders load their weights
                raise RuntimeError(f"torchvision {torchvision.__version__} loads weights in a way the course "
                                   "cannot check")
            from unittest import mock

            with mock.patch.object(zoo_api, "load_state_dict_from_url", _hub_weights):
                model = builder(weights=torchvision.models.get_model_weights(name).DEFAULT, **options)
            loaded = True
        except Exception as exc:  # offline, a damaged or replaced cache file, a timeout...
            reason = clean_message(f"{type(exc).__name__}: {exc}")
            warnings.warn(f"pretrained weights for {name} unavailable ({reason}): using random weights",
                          stacklevel=2)
    if model is None:
        model = builder(weights=None, **options)
    _replace_head(model, num_classes)
    return model, loaded
