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
