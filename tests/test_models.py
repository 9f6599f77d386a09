import pytest
import torch

from helpers import models


def test_mlp_shapes_and_parameter_count():
    model = models.MLP(784, [256, 128], 10)
    assert model(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    assert models.count_parameters(model) == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    with_dropout = models.MLP(784, [32], 10, dropout=0.5)
    assert any(isinstance(m, torch.nn.Dropout) for m in with_dropout.modules())


@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_lenet5_takes_mnist_and_cifar_images(channels, size):
    model = models.LeNet5(in_channels=channels, image_size=size)
    assert model(torch.zeros(2, channels, size, size)).shape == (2, 10)
    assert model.features(torch.zeros(2, channels, size, size)).shape == (2, 16, 5, 5)


def test_residual_block_adds_the_shortcut():
    same = models.ResidualBlock(16, 16)
    assert isinstance(same.shortcut, torch.nn.Identity)
    torch.nn.init.zeros_(same.body[-1].weight)  # silence the residual branch: F(x) = 0
    torch.nn.init.zeros_(same.body[-1].bias)
    x = torch.randn(2, 16, 8, 8)
    assert torch.allclose(same(x), torch.relu(x))  # relu(0 + x)
    down = models.ResidualBlock(16, 32, stride=2)
    assert down(torch.zeros(2, 16, 8, 8)).shape == (2, 32, 4, 4)


def test_resnet18_for_cifar():
    model = models.resnet18()
    model.eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert models.count_parameters(model) == 11_173_962  # ResNet-18 with a 10-class head


def test_resnet_halves_the_resolution_at_each_later_stage():
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
    with pytest.raises(ValueError, match="larger than the padded input"):
        models.conv_output_size(2, 5)
    with pytest.raises(ValueError, match="stride must be a positive int"):
        models.conv_output_size(28, 3, stride=0)
    with pytest.raises(ValueError, match="padding"):
        models.conv_output_size(28, 3, padding=-1)


def test_small_cnn_shapes_and_block_order():
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
