"""The course's models, each first built in the open in its lesson."""
import math

from torch import nn


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """The height (or width) after a convolution or pooling layer (lesson 05):
    ``floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``.

    ``ceil_mode=True`` rounds up, as pooling layers do with that flag, except that the last
    window must start inside the input or its left padding. A window bigger than the padded
    input is a ValueError, as it is in PyTorch.
    """
    for name, value in (("size", size), ("kernel_size", kernel_size), ("stride", stride),
                        ("dilation", dilation)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    if span < 0:
        raise ValueError(f"the window ({dilation * (kernel_size - 1) + 1} pixels with dilation {dilation}) "
                         f"is larger than the padded input ({size} + 2*{padding})")
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:  # the last window would start in the right padding
        out -= 1
    return out


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (padding 1, no bias: BN has one), batch norm, ReLU (lesson 05).
    ``[b, in, h, w] => [b, out, h, w]``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
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


class ResidualBlock(nn.Module):
    """The basic block of ResNet-18/34 (He et al., 2016): two 3x3 convolutions and a
    shortcut, ``relu(F(x) + shortcut(x))`` (lesson 07)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),  # [b, in, h, w] => [b, out, h/s, w/s]
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),      # same shape
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:  # match shapes with a 1x1 convolution
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """A ResNet for 32x32 images: a 3x3 stem, then four stages of basic blocks
    (``blocks=(2, 2, 2, 2)`` is ResNet-18) and global average pooling (lesson 07)."""

    def __init__(self, blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512), in_channels: int = 3,
                 num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),  # [b, 3, 32, 32] => [b, w0, 32, 32]
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages, width = [], widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            stride = 1 if i == 0 else 2  # each later stage halves h and w
            stages += [ResidualBlock(width, w, stride)] + [ResidualBlock(w, w) for _ in range(n - 1)]
            width = w
        self.stages = nn.Sequential(*stages)  # => [b, w3, 4, 4]
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),           # => [b, w3, 1, 1]
            nn.Flatten(),                      # => [b, w3]
            nn.Linear(width, num_classes),     # => [b, 10] logits
        )

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


def resnet18(num_classes: int = 10, in_channels: int = 3) -> ResNet:
    """ResNet-18 for 32x32 inputs (CIFAR-10), lesson 07."""
    return ResNet((2, 2, 2, 2), (64, 128, 256, 512), in_channels, num_classes)


def count_parameters(model: nn.Module) -> int:
    """How many trainable numbers a model has (lesson 04)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
