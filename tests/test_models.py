import itertools
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from helpers import models


def test_mlp_shapes_and_parameter_count():
    """Bug caught: MLP layers mis-sized (a width not carried to the next layer), or count_parameters
    miscounting."""
    model = models.MLP(784, [256, 128], 10)
    assert model(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    assert models.count_parameters(model) == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    with_dropout = models.MLP(784, [32], 10, dropout=0.5)
    assert any(isinstance(m, torch.nn.Dropout) for m in with_dropout.modules())


@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_lenet5_takes_mnist_and_cifar_images(channels, size):
    """Bug caught: LeNet-5 padding 28x28 or 32x32 images wrongly, so the trunk does not end at 16x5x5."""
    model = models.LeNet5(in_channels=channels, image_size=size)
    assert model(torch.zeros(2, channels, size, size)).shape == (2, 10)
    assert model.features(torch.zeros(2, channels, size, size)).shape == (2, 16, 5, 5)


def test_residual_block_adds_the_shortcut():
    """Bug caught: a residual block whose identity shortcut is not added before the final ReLU."""
    same = models.ResidualBlock(16, 16)
    assert isinstance(same.shortcut, torch.nn.Identity)
    torch.nn.init.zeros_(same.body[-1].weight)  # silence the residual branch: F(x) = 0
    torch.nn.init.zeros_(same.body[-1].bias)
    x = torch.randn(2, 16, 8, 8)
    assert torch.allclose(same(x), torch.relu(x))  # relu(0 + x)
    down = models.ResidualBlock(16, 32, stride=2)
    assert down(torch.zeros(2, 16, 8, 8)).shape == (2, 32, 4, 4)


def test_resnet18_for_cifar():
    """Bug caught: ResNet-18's parameter count off (a wrong projection, bias or stage)."""
    model = models.resnet18()
    model.eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert models.count_parameters(model) == 11_173_962  # ResNet-18 with a 10-class head


def test_resnet_halves_the_resolution_at_each_later_stage():
    """Bug caught: a stage striding at the wrong block, or the first stage downsampling."""
    model = models.ResNet(blocks=(1, 1, 1, 1), widths=(8, 16, 32, 64))
    model.eval()
    shapes = []
    for block in model.stages:
        block.register_forward_hook(lambda module, inputs, out: shapes.append(tuple(out.shape)))
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert shapes == [(2, 8, 32, 32), (2, 16, 16, 16), (2, 32, 8, 8), (2, 64, 4, 4)]
    deep = models.resnet18()
    strides = [block.body[0].stride for block in deep.stages]
    assert strides == [(1, 1), (1, 1), (2, 2), (1, 1), (2, 2), (1, 1), (2, 2), (1, 1)]


def test_mlp_is_not_linear_and_drops_out_only_in_training():
    """Bug caught: an MLP without its activations, or dropout active in eval mode."""
    torch.manual_seed(0)
    model = models.MLP(4, [16], 3, dropout=0.5)
    model.eval()
    a, b = torch.randn(1, 4), torch.randn(1, 4)
    with torch.no_grad():
        # A stack of linear layers would give f(a + b) = f(a) + f(b) - f(0); the ReLU breaks that.
        assert not torch.allclose(model(a + b), model(a) + model(b) - model(torch.zeros(1, 4)), atol=1e-4)
        assert torch.equal(model(a), model(a))  # no dropout in eval mode
        model.train()
        assert not torch.equal(model(a.repeat(64, 1))[0], model(a.repeat(64, 1))[0])


def _layer_configs():
    for size in (1, 2, 5, 7, 28, 32):
        for k in (1, 2, 3, 5):
            for s in (1, 2, 3):
                for p in (0, 1, 2):
                    for d in (1, 2):
                        if size + 2 * p >= d * (k - 1) + 1:
                            yield size, k, s, p, d


def test_conv_output_size_matches_conv2d_and_pooling():
    """Bug caught: conv_output_size's formula off by one, padding counted once, or dilation misplaced."""
    for size, k, s, p, d in _layer_configs():
        x = torch.zeros(1, 1, size, size + 1)  # a non-square input: height and width both checked
        out = torch.nn.functional.conv2d(x, torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d)
        assert out.shape[2:] == (models.conv_output_size(size, k, s, p, d),
                                 models.conv_output_size(size + 1, k, s, p, d)), (size, k, s, p, d)
        if p <= k // 2:  # PyTorch's own limit for pooling
            for ceil in (False, True):
                pooled = torch.nn.functional.max_pool2d(x, k, s, p, d, ceil_mode=ceil)
                assert pooled.shape[2] == models.conv_output_size(size, k, s, p, d, ceil_mode=ceil), \
                    (size, k, s, p, d, ceil)


def test_conv_output_size_rejects_impossible_layers():
    """Bug caught: a window larger than the input, stride 0 or negative padding giving a size instead of an
    error."""
    with pytest.raises(ValueError, match="larger than the padded input"):
        models.conv_output_size(2, 5)
    with pytest.raises(ValueError, match="stride must be a positive int"):
        models.conv_output_size(28, 3, stride=0)
    with pytest.raises(ValueError, match="padding"):
        models.conv_output_size(28, 3, padding=-1)


def test_small_cnn_shapes_and_block_order():
    """Bug caught: SmallCNN's blocks in the wrong order (pool before the first conv) or its convolutions
    with a bias."""
    model = models.SmallCNN(widths=(8, 16, 32), in_channels=3, num_classes=10)
    shapes = []
    for block in model.features:
        block.register_forward_hook(lambda module, inputs, out: shapes.append(tuple(out.shape[1:])))
    model.eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert shapes == [(8, 32, 32), (8, 16, 16), (16, 16, 16), (16, 8, 8), (32, 8, 8)]  # pool, conv, ...
    first = model.features[0]
    assert [type(m) for m in first] == [torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ReLU]
    assert first[0].bias is None  # BN's shift makes the conv bias redundant
    assert models.SmallCNN(in_channels=1)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


# Lesson 07: parameter counts written from each architecture's definition, not the models' own counts.
def _conv(c_in, c_out, k, bias=False, groups=1):
    return c_out * (c_in // groups) * k * k + (c_out if bias else 0)


def _bn(c):
    return 2 * c  # weight and bias


def _linear(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def _cbr(c_in, c_out, k=3):
    return _conv(c_in, c_out, k) + _bn(c_out)


def _alexnet_params(c):
    convs = _conv(c, 64, 5, True) + _conv(64, 128, 5, True) + _conv(128, 256, 3, True) \
        + _conv(256, 256, 3, True) + _conv(256, 128, 3, True)
    return convs + _linear(128 * 4 * 4, 512) + _linear(512, 512) + _linear(512, 10)


def _vgg11_params(c):
    convs = [(c, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512)]
    return sum(_cbr(i, o) for i, o in convs) + _linear(512, 10)


def _inception_params(c, c1, c2, c3, c4):
    return _cbr(c, c1, 1) + _cbr(c, c2[0], 1) + _cbr(c2[0], c2[1], 3) + _cbr(c, c3[0], 1) \
        + _cbr(c3[0], c3[1], 5) + _cbr(c, c4, 1)


def _googlenet_params(c):
    blocks = [(64, 32, (48, 64), (8, 16), 16), (128, 64, (64, 96), (16, 48), 32),
              (240, 96, (48, 104), (8, 24), 32), (256, 112, (64, 144), (16, 32), 32)]
    return _cbr(c, 64) + sum(_inception_params(*b) for b in blocks) + _linear(320, 10)


def _basic_block_params(c_in, c_out, stride, shortcut=True):
    projection = shortcut and (stride != 1 or c_in != c_out)
    return _cbr(c_in, c_out) + _cbr(c_out, c_out) + (_cbr(c_in, c_out, 1) if projection else 0)


def _resnet_params(blocks, widths, c=3, shortcuts=True):
    total, width = _cbr(c, widths[0]), widths[0]
    for i, (n, w) in enumerate(zip(blocks, widths)):
        total += _basic_block_params(width, w, 1 if i == 0 else 2, shortcuts)
        total += (n - 1) * _basic_block_params(w, w, 1, shortcuts)
        width = w
    return total + _linear(width, 10)


def _resnet9_params(c):
    return _cbr(c, 64) + _cbr(64, 128) + 2 * _cbr(128, 128) + _cbr(128, 256) + _cbr(256, 512) \
        + 2 * _cbr(512, 512) + _linear(512, 10, bias=False)


def _densenet_params(c, k=12, blocks=(6, 6, 6)):
    total, width = _conv(c, 2 * k, 3), 2 * k
    for i, n in enumerate(blocks):
        total += sum(_bn(width + j * k) + _conv(width + j * k, k, 3) for j in range(n))
        width += n * k
        if i < len(blocks) - 1:
            total += _bn(width) + _conv(width, width // 2, 1)
            width //= 2
    return total + _bn(width) + _linear(width, 10)


def _mobilenet_params(c, widths=(32, 64, 128, 128, 256, 256, 512, 512, 512)):
    separable = sum(_conv(i, i, 3, groups=i) + _bn(i) + _conv(i, o, 1) + _bn(o)
                    for i, o in zip(widths, widths[1:]))
    return _cbr(c, widths[0]) + separable + _linear(widths[-1], 10)


ARCHITECTURES = {  # name: (build(in_channels), expected parameter count(in_channels))
    "alexnet": (lambda c: models.AlexNet(in_channels=c), _alexnet_params),
    "vgg11": (lambda c: models.VGG(in_channels=c), _vgg11_params),
    "googlenet": (lambda c: models.GoogLeNet(in_channels=c), _googlenet_params),
    "resnet18": (lambda c: models.resnet18(in_channels=c), lambda c: _resnet_params((2,) * 4, (64, 128, 256, 512), c)),
    "cifar_resnet20": (lambda c: models.cifar_resnet(20), lambda c: _resnet_params((3, 3, 3), (16, 32, 64))),
    "cifar_resnet14_w8": (lambda c: models.cifar_resnet(14, width=8), lambda c: _resnet_params((2, 2, 2), (8, 16, 32))),
    "resnet9": (lambda c: models.resnet9(in_channels=c), _resnet9_params),
    "densenet": (lambda c: models.DenseNet(in_channels=c), _densenet_params),
    "densenet_k8": (lambda c: models.DenseNet(8, (2, 3), in_channels=c), lambda c: _densenet_params(c, 8, (2, 3))),
    "mobilenet": (lambda c: models.MobileNet(in_channels=c), _mobilenet_params),
    "mobilenet_half": (lambda c: models.MobileNet(in_channels=c, width_mult=0.5),
                       lambda c: _mobilenet_params(c, (16, 32, 64, 64, 128, 128, 256, 256, 256))),
}


@pytest.mark.parametrize("name, in_channels", [(name, c) for name in ARCHITECTURES for c in (3, 1)
                                                if c == 3 or not name.startswith("cifar_resnet")])  # RGB only
def test_classic_architectures_shapes_backward_and_parameter_counts(name, in_channels):
    """Bug caught: an architecture's layer mis-sized (parameter count), a wrong output shape, or a layer
    cut off from the gradient."""
    build, expected_params = ARCHITECTURES[name]
    torch.manual_seed(0)
    model = build(in_channels)
    assert models.count_parameters(model) == expected_params(in_channels)
    out = model(torch.randn(2, in_channels, 32, 32))
    assert out.shape == (2, 10)
    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters()), "a layer gets no gradient"


def test_inception_concatenates_four_branches_with_their_kernels():
    """Bug caught: an Inception branch with the wrong kernel, padding or pooling stride, or the branches
    concatenated out of order."""
    block = models.Inception(20, 4, (6, 8), (2, 3), 5)
    assert block.out_channels == 4 + 8 + 3 + 5
    out = block(torch.randn(2, 20, 9, 9))
    assert out.shape == (2, block.out_channels, 9, 9)  # every branch keeps h and w
    kernels = [[m.kernel_size for m in branch.modules() if isinstance(m, torch.nn.Conv2d)]
               for branch in (block.branch1, block.branch2, block.branch3, block.branch4)]
    assert kernels == [[(1, 1)], [(1, 1), (3, 3)], [(1, 1), (5, 5)], [(1, 1)]]
    assert isinstance(block.branch4[0], torch.nn.MaxPool2d) and block.branch4[0].stride == 1
    first_channels = block.branch1(torch.randn(2, 20, 9, 9)).shape[1]  # branch 1 comes first in the concat
    block.eval()
    x = torch.randn(2, 20, 9, 9)
    assert torch.equal(block(x)[:, :first_channels], block.branch1(x))
    assert models.count_parameters(block) == _inception_params(20, 4, (6, 8), (2, 3), 5)


def test_vgg_block_is_num_convs_3x3_then_a_pool():
    """Bug caught: a VGG block with one convolution too few or its channels wired wrongly."""
    block = models.vgg_block(3, 8, 2)
    convs = [m for m in block if isinstance(m, torch.nn.Sequential)]
    assert [c[0].kernel_size for c in convs] == [(3, 3), (3, 3)]
    assert [(c[0].in_channels, c[0].out_channels) for c in convs] == [(3, 8), (8, 8)]
    assert isinstance(block[-1], torch.nn.MaxPool2d)
    assert block(torch.zeros(2, 3, 16, 16)).shape == (2, 8, 8, 8)


@pytest.mark.parametrize("c_in, c_out, stride", [(16, 16, 1), (16, 32, 2)])
def test_plain_block_is_the_same_layers_without_the_addition(c_in, c_out, stride):
    """Bug caught: shortcut=False dropping or keeping the wrong layers, or the projection present where
    shapes match."""
    torch.manual_seed(0)
    x = torch.randn(2, c_in, 8, 8)
    for shortcut in (True, False):
        block = models.ResidualBlock(c_in, c_out, stride, shortcut=shortcut).eval()
        torch.nn.init.zeros_(block.body[-1].weight)  # silence the body: F(x) = 0
        torch.nn.init.zeros_(block.body[-1].bias)
        with torch.no_grad():
            out = block(x)
            if shortcut:  # relu(0 + shortcut(x)): the input gets through
                assert torch.allclose(out, torch.relu(block.shortcut(x)))
                assert out.abs().sum() > 0
            else:         # relu(0): nothing gets through
                assert block.shortcut is None
                assert torch.equal(out, torch.zeros_like(out))
    residual = models.count_parameters(models.ResidualBlock(c_in, c_out, stride))
    plain = models.count_parameters(models.ResidualBlock(c_in, c_out, stride, shortcut=False))
    projection = _cbr(c_in, c_out, 1) if c_in != c_out else 0  # the 1x1 conv + BN, only where shapes change
    assert residual - plain == projection


@pytest.mark.parametrize("build", [lambda s: models.cifar_resnet(8, shortcuts=s),
                                   lambda s: models.ResNet((1, 1), (8, 16), shortcuts=s)])
def test_shortcuts_switch_reaches_every_block(build):
    """Bug caught: shortcuts=False not passed on to every block of the network."""
    x1, x2 = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    outputs = {}
    for shortcuts in (True, False):
        model = build(shortcuts).eval()
        for block in model.stages:
            assert (block.shortcut is not None) == shortcuts
            torch.nn.init.zeros_(block.body[-1].weight)
            torch.nn.init.zeros_(block.body[-1].bias)
        with torch.no_grad():
            outputs[shortcuts] = model(x1), model(x2)
    assert not torch.allclose(*outputs[True])  # the input reaches the head through the shortcuts
    assert torch.equal(*outputs[False])        # plain: every silenced block cuts it off


def test_resnet18_passes_the_shortcuts_switch_on():
    """Bug caught: resnet18(shortcuts=...) ignoring its argument."""
    assert all(block.shortcut is None for block in models.resnet18(shortcuts=False).stages)
    assert all(block.shortcut is not None for block in models.resnet18().stages)


def test_cifar_resnet_stages_and_depth_check():
    """Bug caught: cifar_resnet's n not (depth - 2) / 6, a depth of another form accepted, or width 0
    accepted."""
    model = models.cifar_resnet(14, width=8).eval()
    shapes = []
    for block in model.stages:
        block.register_forward_hook(lambda module, inputs, out: shapes.append(tuple(out.shape[1:])))
    model(torch.zeros(1, 3, 32, 32))
    assert shapes == [(8, 32, 32)] * 2 + [(16, 16, 16)] * 2 + [(32, 8, 8)] * 2  # n = (14 - 2) / 6 = 2
    convs = [m for m in models.cifar_resnet(32).modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == 32  # 31 3x3 convolutions + the linear layer
    assert (models.count_parameters(models.cifar_resnet(20)) - models.count_parameters(models.cifar_resnet(20, False))
            == _cbr(16, 32, 1) + _cbr(32, 64, 1))  # only the two projections differ
    for depth in (21, 22, 16, 2, 0, 20.0):
        with pytest.raises(ValueError, match=r"depth must be 6n \+ 2 \(8, 14, 20"):
            models.cifar_resnet(depth)
    with pytest.raises(ValueError, match="width must be a positive int"):
        models.cifar_resnet(20, width=0)


def test_resnet9_adds_its_residuals_and_scales_the_logits():
    """Bug caught: ResNet-9 without its residual additions or its 1/8 logit scale."""
    model = models.resnet9(width=16).eval()
    assert isinstance(model.head[0], torch.nn.AdaptiveMaxPool2d)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = model.layer3(model.layer2(model.layer1(model.prep(x)) + model.res1(model.layer1(model.prep(x)))))
        expected = model.head(features + model.res3(features)) * 0.125
        assert torch.allclose(model(x), expected, atol=1e-5)
    assert model.head[-1].in_features == 128  # width 16: channels 16, 32, 64, 128


def test_dense_block_grows_by_growth_rate_per_layer():
    """Bug caught: a dense block not passing its input through unchanged, or a transition not halving."""
    block = models.DenseBlock(5, growth_rate=3, num_layers=4).eval()
    assert block.out_channels == 5 + 4 * 3
    x = torch.randn(2, 5, 6, 6)
    out = block(x)
    assert out.shape == (2, 17, 6, 6)
    assert torch.equal(out[:, :5], x)  # the input is passed on unchanged, new channels appended
    assert [layer[-1].in_channels for layer in block.layers] == [5, 8, 11, 14]
    down = models.transition(17, 8)
    assert down(out).shape == (2, 8, 3, 3)
    assert isinstance(down[-1], torch.nn.AvgPool2d)


def test_depthwise_separable_conv_and_its_savings():
    """Bug caught: the depthwise convolution without groups, or count_macs ignoring groups."""
    block = models.DepthwiseSeparableConv(8, 16, stride=2)
    assert block.depthwise[0].groups == 8 and block.depthwise[0].out_channels == 8
    assert block.pointwise[0].kernel_size == (1, 1)
    assert block(torch.zeros(2, 8, 16, 16)).shape == (2, 16, 8, 8)
    separable = models.count_macs(models.DepthwiseSeparableConv(8, 16), (8, 8, 8))
    standard = models.count_macs(torch.nn.Conv2d(8, 16, 3, padding=1), (8, 8, 8))
    assert separable == 8 * 8 * (8 * 3 * 3 + 8 * 16)  # per pixel: depthwise 9 per channel, pointwise 8 x 16
    assert standard == 8 * 8 * 16 * 8 * 3 * 3


def test_count_macs_is_exact_for_conv_and_linear():
    """Bug caught: count_macs using out_channels or ignoring groups, stride or padding for a convolution."""
    conv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)  # 9x9 => 5x5; each output sees 4/2 channels
    assert models.count_macs(conv, (4, 9, 9)) == 6 * 5 * 5 * 2 * 3 * 3
    assert models.count_macs(torch.nn.Linear(7, 3), (7,)) == 7 * 3
    net = torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(150, 3))
    assert models.count_macs(net, [4, 9, 9]) == 6 * 5 * 5 * 2 * 3 * 3 + 150 * 3


def test_count_macs_runs_in_eval_mode_and_restores_each_modules_mode():
    """Bug caught: count_macs running in training mode (BatchNorm refuses a batch of one, statistics
    change) or not restoring modes."""
    # BatchNorm in training mode refuses a batch of one: the count must run in eval mode.
    model = torch.nn.Sequential(torch.nn.Linear(7, 3), torch.nn.BatchNorm1d(3), torch.nn.Dropout())
    model.train()
    model[2].eval()  # a submodule a learner froze on purpose
    assert models.count_macs(model, (7,)) == 21
    assert [m.training for m in model.modules()] == [True, True, True, False]
    assert model[1].num_batches_tracked == 0  # the count changed no running statistics
    with pytest.raises(ValueError):
        models.count_macs(model, (8,))
    assert [m.training for m in model.modules()] == [True, True, True, False]


def test_count_macs_rejects_a_wrong_input_shape_clearly():
    """Bug caught: a batch dimension, a zero, a float or an empty input_shape accepted, or LeNet-5's count
    wrong."""
    model = models.SmallCNN(widths=(8, 16))
    with pytest.raises(ValueError, match=r"does not take an input of shape \(1, 28, 28\): .*3 channels"):
        models.count_macs(model, (1, 28, 28))
    with pytest.raises(ValueError, match=r"shape \(1, 3, 32, 32\)"):  # a batch dimension by mistake
        models.count_macs(model, (1, 3, 32, 32))
    for bad in (32, (3, 0, 32), (3, 32.0, 32), ()):
        with pytest.raises(ValueError, match="input_shape must be the shape of one input"):
            models.count_macs(model, bad)
    assert models.count_macs(models.LeNet5(), (1, 28, 28)) == (6 * 28 * 28 * 25 + 16 * 10 * 10 * 6 * 25
                                                              + 400 * 120 + 120 * 84 + 84 * 10)


def _no_download(*args, **kwargs):
    pytest.fail("no download may be attempted")  # pytest's Failed is not an Exception: nothing can swallow it


def test_torchvision_model_falls_back_to_random_weights_offline(monkeypatch):
    """Bug caught: offline, torchvision_model crashing or warning more than one line instead of keeping
    random weights."""
    def offline(self, *args, **kwargs):
        raise OSError("no network here")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_download)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, loaded = models.torchvision_model("resnet18", 3)
    assert loaded is False
    assert [str(w.message) for w in caught] == [
        "pretrained weights for resnet18 unavailable (OSError: no network here): using random weights"]
    assert model.fc.out_features == 3
    model.eval()
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 3)


def test_torchvision_model_loads_weights_when_they_can_be_had(monkeypatch):
    """Bug caught: the pretrained weights not loaded, or the head not replaced."""
    reference = torchvision.models.resnet18().state_dict()
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", lambda self, *a, **k: reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, loaded = models.torchvision_model("resnet18", 5)
    assert loaded is True
    assert torch.equal(model.conv1.weight, reference["conv1.weight"])
    assert model.fc.out_features == 5


@pytest.mark.parametrize("name, head", [("mobilenet_v3_small", "classifier.3"), ("squeezenet1_1", "classifier.1")])
def test_torchvision_model_without_weights_never_downloads(monkeypatch, name, head):
    """Bug caught: pretrained=False still downloading, or a SqueezeNet/MobileNet head not replaced."""
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", _no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_download)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, loaded = models.torchvision_model(name, 4, pretrained=False)
    assert loaded is False
    layer = model.get_submodule(head)
    assert getattr(layer, "out_features", getattr(layer, "out_channels", None)) == 4
    model.eval()
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 4)


def test_torchvision_model_rejects_unknown_names():
    """Bug caught: a misspelt or non-classification model name raising torchvision's bare KeyError."""
    with pytest.raises(ValueError, match=r"unknown torchvision model 'resnet81': try resnet18"):
        models.torchvision_model("resnet81", 10, pretrained=False)
    with pytest.raises(ValueError, match=r"unknown torchvision model 'fasterrcnn_resnet50_fpn'.*list_models"):
        models.torchvision_model("fasterrcnn_resnet50_fpn", 10, pretrained=False)  # not a classifier


@pytest.mark.parametrize("build, trunk, shape", [
    (models.AlexNet, "features", (128, 4, 4)), (models.VGG, "features", (512, 1, 1)),
    (models.GoogLeNet, "blocks", (320, 4, 4)), (models.DenseNet, "features", (132, 4, 4)),
    (models.MobileNet, "features", (512, 4, 4)), (lambda: models.MobileNet(width_mult=0.25), "features", (128, 4, 4))])
def test_each_trunk_ends_where_its_head_expects(build, trunk, shape):
    """Bug caught: a trunk whose output shape no longer matches what its head is built for."""
    model, x = build(), torch.zeros(2, 3, 32, 32)
    stem = getattr(model, "stem", torch.nn.Identity())
    assert getattr(model, trunk)(stem(x)).shape[1:] == shape


# ------------------------------------------------------------ models under faults (round two)
def test_conv_output_size_with_ceil_mode_agrees_with_pytorch_everywhere():
    """Bug caught: ceil_mode=True refused 264 settings that PyTorch's pooling accepts (a window
    larger than the input, allowed when rounding up) and miscounted none of the others."""
    checked = 0
    for size, k, s, p, d in itertools.product(range(1, 12), range(1, 6), range(1, 5), range(4), range(1, 3)):
        if p > k // 2:
            continue  # PyTorch's own limit for pooling
        for ceil in (False, True):
            try:
                expected = torch.nn.functional.max_pool1d(torch.zeros(1, 1, size), k, s, p, d, ceil_mode=ceil).shape[-1]
            except RuntimeError:
                with pytest.raises(ValueError):
                    models.conv_output_size(size, k, s, p, d, ceil_mode=ceil)
                continue
            assert models.conv_output_size(size, k, s, p, d, ceil_mode=ceil) == expected, (size, k, s, p, d, ceil)
            checked += 1
    assert checked > 1500


def test_sizes_accept_numpy_integers_and_refuse_bools():
    """Bug caught: np.int64 (what numpy arithmetic gives) refused; True taken as size 1."""
    assert models.conv_output_size(np.int64(28), np.int32(5), padding=np.int64(2)) == 28
    assert models.count_macs(torch.nn.Conv2d(3, 4, 3), (np.int64(3), 8, np.int16(8))) == 4 * 6 * 6 * 27
    assert isinstance(models.cifar_resnet(np.int64(8), width=np.int64(4)), models.ResNet)
    with pytest.raises(ValueError, match="size must be a positive int, got True"):
        models.conv_output_size(True, 3)
    with pytest.raises(ValueError, match="input_shape"):
        models.count_macs(torch.nn.Linear(1, 1), (True,))


@pytest.mark.parametrize("layer, shape, expected", [
    (torch.nn.Conv1d(3, 8, 5), (3, 20), 16 * 8 * 3 * 5),
    (torch.nn.Conv3d(2, 4, 3, groups=2), (2, 5, 5, 5), 27 * 4 * 1 * 27),
    (torch.nn.ConvTranspose2d(4, 6, 3, stride=2), (4, 5, 5), 4 * 25 * 6 * 9),  # each input feeds 6 x 3 x 3
    (torch.nn.LSTM(10, 20, batch_first=True), (7, 10), 7 * 4 * 20 * (10 + 20)),
    (torch.nn.GRU(10, 20, num_layers=2, bidirectional=True), (7, 10), 7 * 2 * 3 * 20 * ((10 + 20) + (40 + 20))),
    (torch.nn.RNN(4, 6), (3, 4), 3 * 6 * (4 + 6)),
], ids=["Conv1d", "Conv3d-groups", "ConvTranspose2d", "LSTM", "GRU-2-layers-bidirectional", "RNN"])
def test_count_macs_counts_every_convolution_and_recurrent_layer(layer, shape, expected):
    """Bug caught: 0 MACs for Conv1d networks; ConvTranspose and RNN layers skipped without a word."""
    class First(torch.nn.Module):  # an RNN returns (output, state): keep the output
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x):
            out = self.layer(x)
            return out[0] if isinstance(out, tuple) else out

    assert models.count_macs(First(), shape) == expected


def test_count_macs_names_the_layers_it_leaves_out():
    """Bug caught: a layer with weights left out of the count without a warning, or norms warned about."""
    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = torch.nn.MultiheadAttention(8, 2, batch_first=True)
            self.norm = torch.nn.LayerNorm(8)

        def forward(self, x):
            return self.norm(self.attention(x, x, x)[0])

    with pytest.warns(UserWarning, match="the MACs of MultiheadAttention are left out of the total"):
        models.count_macs(Attention(), (5, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # norms and embeddings have no MACs worth naming
        models.count_macs(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)), (3, 8, 8))


class _Payload:
    """A pickle that would create a file when unpickled without weights_only=True."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_torchvision_model_never_runs_code_from_a_poisoned_hub_cache(tmp_path, monkeypatch):
    """Bug caught: torchvision loads a cached file with weights_only=False and checks its hash
    only when downloading: a pickle under the expected name ran."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    name = os.path.basename(torchvision.models.get_model_weights("resnet18").DEFAULT.url)
    cached = tmp_path / "torch" / "hub" / "checkpoints" / name
    cached.parent.mkdir(parents=True)
    marker = tmp_path / "code-ran"
    torch.save({"fc.weight": _Payload(marker)}, cached)
    with pytest.warns(UserWarning, match=r"pretrained weights for resnet18 unavailable .*is not the published one"):
        model, loaded = models.torchvision_model("resnet18", num_classes=2)
    assert not loaded and not marker.exists() and model.fc.out_features == 2
    # Even with the hash check fooled, weights_only=True refuses to run the payload.
    digest = name.split("-")[1].split(".")[0]
    monkeypatch.setattr(models.hashlib, "sha256", lambda: type("Fake", (), {
        "update": lambda self, chunk: None, "hexdigest": lambda self: digest + "0" * 56})())
    with pytest.warns(UserWarning, match="pretrained weights for resnet18 unavailable"):
        _, loaded = models.torchvision_model("resnet18", num_classes=2)
    assert not loaded and not marker.exists()


def test_torchvision_googlenet_returns_one_tensor_in_training_mode():
    """Bug caught: GoogLeNet's namedtuple of three heads, which fit cannot use."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torchvision: its default init will change
        model, _ = models.torchvision_model("googlenet", num_classes=3, pretrained=False)
    out = model.train()(torch.zeros(2, 3, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3)


# ------------------------------------------------------------------ counting: slips no test saw
def test_count_macs_counts_a_linear_layer_at_every_position_of_a_sequence():
    """Bug caught: a Linear layer counted as in_features * out_features once, not once per row of
    its input, so a layer applied to each of 10 time steps is counted a tenth."""
    assert models.count_macs(torch.nn.Linear(8, 4), (10, 8)) == 10 * 8 * 4


def test_count_macs_multiplies_both_sides_of_a_kernel():
    """Bug caught: a kernel's size taken as its first side only, wrong for a 1x3 or 3x1 kernel."""
    conv = torch.nn.Conv2d(3, 4, (1, 3))  # 5x7 => 5x5
    assert models.count_macs(conv, (3, 5, 7)) == 4 * 5 * 5 * 3 * 1 * 3


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_count_macs_counts_an_lstm_projection_and_an_unbatched_rnn():
    """Bug caught: an LSTM's proj_size ignored (its state is the projection, which has MACs of its
    own), or a 2-d (unbatched) input's feature size taken for its batch size."""
    class Unbatched(torch.nn.Module):
        def __init__(self, rnn):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):
            return self.rnn(x[0])[0]  # the sequence alone, [steps, features]

    projected = Unbatched(torch.nn.LSTM(10, 20, proj_size=5))
    assert models.count_macs(projected, (7, 10)) == 7 * (4 * 20 * (10 + 5) + 20 * 5)
    assert models.count_macs(Unbatched(torch.nn.RNN(10, 6)), (7, 10)) == 7 * 6 * (10 + 6)


def test_count_macs_leaves_no_hook_behind():
    """Bug caught: the counting hooks not removed, so every later forward pass runs (and leaks into)
    them."""
    model = models.LeNet5()
    models.count_macs(model, (1, 28, 28))
    with pytest.raises(ValueError):
        models.count_macs(model, (3, 28, 28))
    assert not any(m._forward_hooks for m in model.modules())
