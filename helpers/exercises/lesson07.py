"""The checks of lesson 07's exercises (classic networks)."""
import torch
from torch import nn

from ..check import call_learner, check, exercise, fail, hint_for, require_int
from ..models import ResidualBlock, count_macs, count_parameters, vgg_block


# ------------------------------------------------------------------------------ Exercise 1
@exercise("Exercise 1")
def ex1(ex1):
    require_int(ex1, "the answer", "write the count as arithmetic on integers (no /, which gives a float)")
    expected = count_parameters(vgg_block(128, 256, num_convs=3))
    conv_weights = [256 * c_in * 3 * 3 for c_in in (128, 256, 256)]
    slips = {
        expected + 3 * 256: "each convolution here is followed by BatchNorm and is built without a bias: "
                            "does your count give it one?",
        expected + 3 * 2 * 256: "BatchNorm learns a scale and a shift per channel; its running mean and "
                                "variance are buffers, not trainable parameters",
        expected + 3 * 2 * 256 + 3 * 256: "count only what is trained: which layers have a bias, and which "
                                          "of BatchNorm's numbers are learned?",
        sum(conv_weights): "the BatchNorm layers learn parameters too",
        3 * (256 * 128 * 9 + 2 * 256): "only the first convolution sees 128 input channels: what do the next "
                                       "two see?",
        3 * (256 * 256 * 9 + 2 * 256): "the first convolution gets the block's input: how many channels is "
                                       "that?",
        count_parameters(vgg_block(64, 128, num_convs=2)): "that is section 3's block: this one has other "
                                                           "channels and three convolutions",
    }
    check(ex1, expected, "the block's trainable parameters", reveal=False,
          hint=hint_for(ex1, slips, "count each layer on its own: how many channels go in and out of each "
                                    "convolution, does it have a bias, and what does BatchNorm learn?"))


# ------------------------------------------------------------------------------ Exercise 2
def _randomise(module: nn.Module, generator: torch.Generator):
    """Seeded random weights and BatchNorm statistics, so that F(x) takes both signs."""
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue                                    # BatchNorm's num_batches_tracked
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            else:
                tensor.copy_(0.3 * torch.randn(tensor.shape, generator=generator))


def _copy_into(reference: nn.Module, learner: nn.Module, part: str, what: str):
    """Copy the learner's ``part`` (body or shortcut) tensors, in order, into the reference's."""
    theirs = [t for t in getattr(learner, part).state_dict().values() if t.is_floating_point()]
    ours = [t for t in getattr(reference, part).state_dict().values() if t.is_floating_point()]
    if [t.shape for t in theirs] != [t.shape for t in ours]:
        fail(f"{what}: self.{part} does not hold the layers the exercise describes, in that order",
             "F is conv, BN, ReLU, conv, BN; a projection shortcut is a 1×1 conv, then BN")
    with torch.no_grad():
        for target, source in zip(ours, theirs):
            target.copy_(source)


@exercise("Exercise 2")
def ex2(MyResidualBlock):
    g = torch.Generator().manual_seed(7)
    for c_in, c_out, stride, size in [(16, 16, 1, 8), (16, 32, 2, 8), (16, 16, 2, 8), (8, 24, 1, 6)]:
        what = f"MyResidualBlock({c_in}, {c_out}, stride={stride})"
        block = call_learner(what, MyResidualBlock, c_in, c_out, stride,
                             hint="__init__(self, in_channels, out_channels, stride=1) calls super().__init__() first")
        x = torch.randn(3, c_in, size, size, generator=g)
        out = call_learner(f"{what} on a [3, {c_in}, {size}, {size}] input", block, x,
                           hint="F(x) and the shortcut's output are added, so they must have the same shape: when the "
                                "channels or the stride change, what must the shortcut do?")
        check(tuple(out.shape), (3, c_out, size // stride, size // stride), f"{what}: output shape")
        reference = ResidualBlock(c_in, c_out, stride)
        check(count_parameters(block), count_parameters(reference), f"{what}: trainable parameters",
              hint="count with the description: which convolutions have a bias, and when does the shortcut "
                   "have parameters at all?")
        check(isinstance(getattr(block, "body", None), nn.Module)
              and isinstance(getattr(block, "shortcut", None), nn.Module), True,
              f"{what}: has self.body and self.shortcut", hint="build F as self.body and the shortcut as "
                                                               "self.shortcut, both modules")
        _randomise(block, g)
        _copy_into(reference, block, "body", what)
        _copy_into(reference, block, "shortcut", what)
        block.eval()
        reference.eval()
        x = torch.randn(3, c_in, size, size, generator=g)
        with torch.no_grad():
            got = call_learner(f"{what} in eval mode", block, x, hint="forward should work in train and eval mode")
            expected = reference(x)
        check(got, expected, f"{what}: its output matches a reference block holding your weights",
              reveal=False,
              hint="the block ends with a ReLU after the addition" if bool((got < 0).any()) else
              "compare with the description: which layer does F end with (can F(x) be negative?), which "
              "convolution has the stride, and where is the one ReLU outside F?")


# ------------------------------------------------------------------------------ Exercise 3
@exercise("Exercise 3")
def ex3(grouped_conv_params):
    for c_in, c_out, k, groups in [(64, 128, 3, 1), (128, 128, 3, 32), (32, 32, 3, 32), (12, 18, 5, 3), (8, 16, 1, 4)]:
        what = f"grouped_conv_params({c_in}, {c_out}, k={k}, groups={groups})"
        got = call_learner(what, grouped_conv_params, c_in, c_out, k, groups, hint="compute the count from the four arguments")
        require_int(got, what, "a count of parameters is a whole number: keep to integer arithmetic (// divides ints)")
        expected = count_parameters(nn.Conv2d(c_in, c_out, k, groups=groups))
        weights = k * k * (c_in // groups) * c_out
        slips = {
            k * k * c_in * c_out + c_out: "that is a standard convolution's count: with groups, how many input "
                                          "channels does each filter see?",
            weights: "a Conv2d has a bias per output channel unless bias=False",
            k * k * (c_in // groups) * (c_out // groups) + c_out: "each output channel has its own filter: only the "
                                                                 "input channels are split among the groups",
            weights + groups: "the bias belongs to each output channel, not to each group",
            k * (c_in // groups) * c_out + c_out: "a k×k kernel has k·k weights per input channel",
            k * k * c_in * c_out * groups + c_out: "grouping makes the layer cheaper, not dearer",
        }
        check(got, expected, what, reveal=False,
              hint=hint_for(got, slips, "count the weights of one filter (which input channels does it see?), "
                                         "then the filters, then the biases"))


# ------------------------------------------------------------------------------ Exercise 4
@exercise("Exercise 4")
def ex4(separable_macs):
    for c_in, c_out, k, size in [(32, 64, 3, 16), (128, 128, 3, 8), (16, 48, 5, 10), (3, 7, 3, 5)]:
        what = f"separable_macs({c_in}, {c_out}, k={k}, size={size})"
        got = call_learner(what, separable_macs, c_in, c_out, k, size, hint="compute the count from the four arguments")
        require_int(got, what, "a count of multiply-accumulates is a whole number: keep to integer arithmetic")
        reference = nn.Sequential(nn.Conv2d(c_in, c_in, k, padding=k // 2, groups=c_in, bias=False),
                                  nn.Conv2d(c_in, c_out, 1, bias=False))
        expected = count_macs(reference, (c_in, size, size))
        pixels = size * size
        slips = {
            k * k * c_in * c_out * pixels: "that is a standard convolution's cost: a depthwise filter reads one "
                                           "channel only, and a pointwise part follows",
            k * k * c_in + c_in * c_out: "that is the cost of one output position: how many are there?",
            (k * k * c_in * c_in + c_in * c_out) * pixels: "a depthwise filter reads its own channel only, not all "
                                                           "of them",
            k * k * c_in * pixels: "the pointwise 1×1 convolution costs multiply-accumulates too",
            c_in * c_out * pixels: "the depthwise k×k convolution costs multiply-accumulates too",
        }
        check(got, expected, what, reveal=False,
              hint=hint_for(got, slips, "cost the two convolutions separately: each output number costs one "
                                        "multiply-accumulate per input number it reads"))


# ------------------------------------------------------------------------------ Exercise 5
class _SpatialAttention(nn.Module):
    """The reference: CBAM's spatial attention, as Exercise 5 describes it."""

    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x, order=(0, 1), squash=torch.sigmoid, dim=1):
        pooled = [x.mean(dim=dim, keepdim=True), x.amax(dim=dim, keepdim=True)]
        return x * squash(self.conv(torch.cat([pooled[i] for i in order], dim=1)))


def _slip_hint(got: torch.Tensor, reference: "_SpatialAttention", x: torch.Tensor) -> str:
    """A hint at the slip whose output the learner's matches, else a general one."""
    slips = [
        (dict(order=(1, 0)), "the two maps go into the convolution in the order the exercise gives: mean first"),
        (dict(squash=lambda t: t), "the convolution's output still has to become a weight in (0, 1)"),
        (dict(squash=torch.relu), "a weight in (0, 1) per pixel: which function squashes any number into (0, 1)?"),
    ]
    with torch.no_grad():
        for options, hint in slips:
            if got.shape == x.shape and torch.allclose(got, reference(x, **options), atol=1e-5, rtol=1e-4):
                return hint
    return ("compare with the description: pool over the channel axis (mean, then max), one convolution, a "
            "sigmoid, then scale every channel of x by the same per-pixel weight")


@exercise("Exercise 5")
def ex5(MySpatialAttention):
    g = torch.Generator().manual_seed(11)
    for kernel_size, (b, c, h, w) in [(7, (2, 6, 9, 9)), (3, (3, 4, 5, 7)), (5, (1, 8, 6, 6))]:
        what = f"MySpatialAttention({kernel_size})"
        block = call_learner(what, MySpatialAttention, kernel_size,
                             hint="__init__(self, kernel_size=7) calls super().__init__() first, then builds self.conv")
        conv = getattr(block, "conv", None)
        if not isinstance(conv, nn.Conv2d):
            fail(f"{what}: self.conv should be an nn.Conv2d, got {type(conv).__name__}",
                 "build the convolution in __init__ as self.conv")
        check((conv.in_channels, conv.out_channels), (2, 1), f"{what}: self.conv maps 2 channels to 1",
              hint="one input channel for the mean map and one for the max map; one output channel: the weights")
        check(count_parameters(block), 2 * kernel_size * kernel_size + 1, f"{what}: trainable parameters",
              hint="one k×k convolution from 2 channels to 1, with a bias, and nothing else that learns")
        x = torch.randn(b, c, h, w, generator=g)
        with torch.no_grad():
            conv.weight.copy_(0.5 * torch.randn(conv.weight.shape, generator=g))
            if conv.bias is not None:
                conv.bias.copy_(0.5 * torch.randn(conv.bias.shape, generator=g))
        try:
            out = block(x)
        except Exception as exc:  # the learner's code raised: say where, with a hint at the likely slip
            message = str(exc).splitlines()[0] if str(exc) else ""
            hint = ("x.max(dim=...) returns a pair (values, indices): take its .values, or use x.amax"
                    if "return_types" in message else
                    "the weights must come out as [b, 1, h, w]: pool over the channel axis (dim=1, keepdim=True), "
                    "and pad the convolution by kernel_size // 2 so that it keeps h and w")
            fail(f"{what} on a [{b}, {c}, {h}, {w}] input raised {type(exc).__name__}: {message}", hint)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            hint = ("return x scaled by the weights, not the weights" if isinstance(out, torch.Tensor)
                    and out.shape == (b, 1, h, w) else
                    "the output has x's shape: the per-pixel weights [b, 1, h, w] broadcast over the channels; "
                    "with padding kernel_size // 2 the convolution keeps h and w")
            fail(f"{what}: output {shape}, expected {(b, c, h, w)}", hint)
        reference = _SpatialAttention(kernel_size)
        reference.load_state_dict({"conv.weight": conv.weight.detach(), "conv.bias": conv.bias.detach()})
        with torch.no_grad():
            expected = reference(x)
        check(out, expected, f"{what}: its output matches a reference block holding your weights", reveal=False,
              hint=_slip_hint(out.detach(), reference, x))
