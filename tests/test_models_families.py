"""The models lesson 07 adds for note 004's six families: NiN, the ResNet/ResNeXt bottleneck,
squeeze-and-excitation (and SE-ResNet), MobileNet v2's inverted residual, ShuffleNet's channel
shuffle and unit, SqueezeNet's fire module."""
import pytest
import torch
from torch import nn

from helpers import models
from helpers.models import count_macs, count_parameters


def _conv_weights(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


# ------------------------------------------------------------------------------ NiN
def test_nin_block_is_a_conv_then_two_1x1_convs_each_with_relu():
    block = models.nin_block(3, 16, 5, padding=2)
    convs = _conv_weights(block)
    assert [c.kernel_size for c in convs] == [(5, 5), (1, 1), (1, 1)]
    assert sum(isinstance(m, nn.ReLU) for m in block) == 3
    assert block(torch.zeros(2, 3, 12, 12)).shape == (2, 16, 12, 12)
    assert count_parameters(block) == (16 * 3 * 25 + 16) + 2 * (16 * 16 + 16)
    assert not isinstance(models.nin_block(3, 16, 3, last_relu=False)[-1], nn.ReLU)


def test_nin_has_no_head_parameters_takes_any_size_and_can_output_negative_logits():
    torch.manual_seed(0)
    nin = models.NiN().eval()
    assert count_parameters(nin.head) == 0
    for size in (32, 40, 64):
        assert nin(torch.randn(2, 3, size, size)).shape == (2, 10)
    assert (nin(torch.randn(8, 3, 32, 32)) < 0).any()   # the last 1x1 conv is linear
    assert models.NiN(num_classes=7, in_channels=1)(torch.zeros(1, 1, 32, 32)).shape == (1, 7)


# ------------------------------------------------------------------------------ bottleneck / ResNeXt
@pytest.mark.parametrize("width, groups", [(64, 1), (128, 32)])
def test_bottleneck_block_counts_and_shapes(width, groups):
    block = models.BottleneckBlock(256, 256, width=width, groups=groups)
    expected = 256 * width + 2 * width + 9 * (width // groups) * width + 2 * width + width * 256 + 2 * 256
    assert count_parameters(block) == expected
    assert isinstance(block.shortcut, nn.Identity)
    assert block.body[3].groups == groups
    assert block(torch.randn(2, 256, 8, 8)).shape == (2, 256, 8, 8)


def test_bottleneck_projects_when_the_shape_changes_and_refuses_indivisible_groups():
    block = models.BottleneckBlock(64, 128, width=32, groups=4, stride=2)
    assert block(torch.randn(2, 64, 8, 8)).shape == (2, 128, 4, 4)
    assert block.shortcut[0].kernel_size == (1, 1) and block.shortcut[0].stride == (2, 2)
    with pytest.raises(ValueError, match="divisible by groups"):
        models.BottleneckBlock(64, 64, width=30, groups=4)


def test_bottleneck_adds_the_shortcut_then_relu():
    torch.manual_seed(0)
    block = models.BottleneckBlock(16, 16, width=8).eval()
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        assert torch.allclose(block(x), torch.relu(block.body(x) + x))


# ------------------------------------------------------------------------------ squeeze-and-excitation
def test_se_block_scales_each_channel_by_a_weight_in_0_1():
    torch.manual_seed(0)
    se = models.SEBlock(32, reduction=8)
    x = torch.randn(3, 32, 6, 6)
    weights = se.excite(se.squeeze(x))
    assert weights.shape == (3, 32) and ((weights > 0) & (weights < 1)).all()
    assert torch.allclose(se(x), x * weights[:, :, None, None])
    assert count_parameters(se) == 2 * 32 * 4 + 4 + 32
    assert count_macs(se, (32, 6, 6)) == 2 * 32 * 4


def test_se_block_keeps_one_hidden_unit_for_few_channels_and_checks_reduction():
    assert count_parameters(models.SEBlock(4, reduction=16)) == 4 * 1 + 1 + 1 * 4 + 4
    with pytest.raises(ValueError, match="reduction"):
        models.SEBlock(16, reduction=0)


def test_se_residual_block_rescales_f_before_the_addition():
    torch.manual_seed(0)
    block = models.SEResidualBlock(8, 16, stride=2, reduction=4).eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        expected = torch.relu(block.se(block.body(x)) + block.shortcut(x))
        assert torch.allclose(block(x), expected)
    plain = models.SEResidualBlock(8, 8, shortcut=False).eval()
    with torch.no_grad():
        assert torch.allclose(plain(x), torch.relu(plain.se(plain.body(x))))


def test_cifar_se_resnet_is_cifar_resnet_plus_one_se_block_per_residual_block():
    se_net, net = models.cifar_se_resnet(20, width=8, reduction=4), models.cifar_resnet(20, width=8)
    assert all(isinstance(b, models.SEResidualBlock) for b in se_net.stages)
    extra = sum(count_parameters(b.se) for b in se_net.stages)
    assert count_parameters(se_net) == count_parameters(net) + extra
    assert se_net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="6n \\+ 2"):
        models.cifar_se_resnet(21)


def test_resnet_builds_its_plain_blocks_by_default():
    """The new ``block`` argument leaves the existing networks as they were."""
    net = models.cifar_resnet(20)
    assert all(type(b) is models.ResidualBlock for b in net.stages)
    assert count_parameters(net) == 272_474
    assert count_parameters(models.resnet18()) == 11_173_962


# ------------------------------------------------------------------------------ MobileNet v2
def test_inverted_residual_expands_filters_depthwise_and_projects_linearly():
    block = models.InvertedResidual(16, 16, expansion=6)
    convs = _conv_weights(block)
    assert [(c.in_channels, c.out_channels, c.groups) for c in convs] == [(16, 96, 1), (96, 96, 96), (96, 16, 1)]
    assert isinstance(block.body[-1], nn.BatchNorm2d)           # no activation after the projection
    assert block.use_shortcut
    assert count_parameters(block) == 16 * 96 + 2 * 96 + 9 * 96 + 2 * 96 + 96 * 16 + 2 * 16


def test_inverted_residual_adds_its_input_only_when_the_shape_is_unchanged():
    torch.manual_seed(0)
    same = models.InvertedResidual(8, 8).eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        assert torch.allclose(same(x), x + same.body(x))
    down = models.InvertedResidual(8, 16, stride=2)
    assert not down.use_shortcut and down(x).shape == (2, 16, 3, 3)
    assert not models.InvertedResidual(8, 12).use_shortcut


def test_inverted_residual_standard_twin_has_the_same_widths_without_the_depthwise_conv():
    twin = models.InvertedResidual(16, 16, depthwise=False)
    assert _conv_weights(twin)[1].groups == 1
    assert count_parameters(twin) - count_parameters(models.InvertedResidual(16, 16)) == 9 * 96 * 96 - 9 * 96
    with pytest.raises(ValueError, match="expansion"):
        models.InvertedResidual(8, 8, expansion=0)


# ------------------------------------------------------------------------------ ShuffleNet, SqueezeNet
def test_channel_shuffle_interleaves_the_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert models.channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert models.channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
    assert torch.equal(models.channel_shuffle(models.channel_shuffle(x, 2), 3), x)   # g then c/g undoes it
    y = torch.randn(2, 12, 3, 4)
    assert torch.equal(models.ChannelShuffle(4)(y), models.channel_shuffle(y, 4))
    with pytest.raises(ValueError, match="groups"):
        models.channel_shuffle(y, 5)


def test_shuffle_unit_and_its_standard_twin():
    torch.manual_seed(0)
    unit = models.ShuffleUnit(48, groups=3)
    assert any(isinstance(m, models.ChannelShuffle) for m in unit.modules())
    assert [c.groups for c in _conv_weights(unit)] == [3, 12, 3]
    assert unit(torch.randn(2, 48, 5, 5)).shape == (2, 48, 5, 5)
    twin = models.ShuffleUnit(48, groups=3, standard=True)
    assert [c.groups for c in _conv_weights(twin)] == [1, 1, 1]
    assert not any(isinstance(m, models.ChannelShuffle) for m in twin.modules())
    assert count_parameters(twin) > count_parameters(unit)
    with pytest.raises(ValueError, match="divisible"):
        models.ShuffleUnit(40, groups=3)


def test_fire_module_squeezes_then_expands_side_by_side():
    fire = models.Fire(96, 16, 64, 64)
    assert fire.out_channels == 128
    assert fire(torch.randn(2, 96, 7, 7)).shape == (2, 128, 7, 7)
    assert count_parameters(fire) == (96 * 16 + 16) + (16 * 64 + 64) + (16 * 64 * 9 + 64)
    assert count_macs(fire, (96, 7, 7)) == 49 * (96 * 16 + 16 * 64 + 16 * 64 * 9)


# ------------------------------------------------------------------------------ all of them
@pytest.mark.parametrize("build, shape", [
    (lambda: models.NiN(), (2, 3, 32, 32)),
    (lambda: models.BottleneckBlock(16, 32, width=16, groups=4, stride=2), (2, 16, 8, 8)),
    (lambda: models.cifar_se_resnet(8, width=4), (2, 3, 32, 32)),
    (lambda: models.InvertedResidual(8, 8), (2, 8, 6, 6)),
    (lambda: models.ShuffleUnit(24, groups=2), (2, 24, 6, 6)),
    (lambda: models.Fire(8, 4, 8, 8), (2, 8, 6, 6)),
], ids=["NiN", "ResNeXt block", "SE-ResNet", "inverted residual", "ShuffleUnit", "Fire"])
def test_every_new_model_trains(build, shape):
    torch.manual_seed(0)
    model = build()
    model(torch.randn(*shape)).square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
