import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from helpers import plot


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_live_curves_groups_metrics_into_panels():
    curves = plot.LiveCurves(metrics=("loss", "acc"))
    for epoch, (loss, acc) in enumerate([(1.0, 0.5), (0.5, 0.8)], start=1):
        curves(epoch, {"epoch": epoch, "train_loss": loss, "val_loss": loss + 0.1, "val_acc": acc, "lr": 0.1})
    assert curves.values["val_acc"] == [(1, 0.5), (2, 0.8)]
    assert "lr" not in curves.values and "epoch" not in curves.values
    fig = curves.figure()
    loss_ax, acc_ax = fig.axes
    assert sorted(line.get_label() for line in loss_ax.lines) == ["train_loss", "val_loss"]
    assert list(acc_ax.lines[0].get_ydata()) == [0.5, 0.8]


def test_function_grid_draws_autograd_derivatives():
    x = torch.linspace(-2, 2, 5)
    fig = plot.function_grid({"square": lambda t: t ** 2, "relu": torch.relu}, x=x, ncols=3)
    square_ax = fig.axes[0]
    f_line, df_line = square_ax.lines[:2]
    assert np.allclose(f_line.get_ydata(), (x ** 2).numpy())
    assert np.allclose(df_line.get_ydata(), (2 * x).numpy())
    assert not fig.axes[2].axison  # the unused panel is blank


def test_surface_draws_trajectories_on_both_views():
    def bowl(x, y):
        return x ** 2 + y ** 2

    path = np.array([[2.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    fig = plot.surface(bowl, xlim=(-3, 3), ylim=(-3, 3), n=30, trajectories=[path])
    ax3, ax2 = fig.axes[0], fig.axes[1]
    assert ax3.name == "3d"
    assert np.allclose(ax2.lines[0].get_xdata(), path[:, 0])
    assert ax2.lines[-1].get_xdata()[0] == 0.0  # the end point is marked


def test_show_images_accepts_common_layouts_and_rejects_others():
    fig = plot.show_images(torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8), labels=[0, 1, 2, 3, 4],
                           ncols=3, class_names=list("abcde"))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == list("abcde") and len(fig.axes) == 6
    fig = plot.show_images(torch.randn(2, 3, 8, 8), mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    assert len(fig.axes) == 8
    with pytest.raises(ValueError, match=r"got shape \(2, 2, 8, 8\)"):
        plot.show_images(torch.zeros(2, 2, 8, 8))


def test_confusion_matrix_counts_pairs():
    cm = plot.confusion_matrix(torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([0, 1, 1, 2, 0, 2]), 3)
    assert torch.equal(cm, torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 2]]))
    assert int(cm.sum()) == 6 and int(cm.trace()) == 4
    fig = plot.plot_confusion_matrix(cm, class_names=["a", "b", "c"], normalize=True)
    assert [t.get_text() for t in fig.axes[0].texts][:3] == ["0.50", "0.50", "0.00"]


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="3 targets but 2 predictions"):
        plot.confusion_matrix([0, 1, 2], [0, 1], 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        plot.confusion_matrix([0, 1, 3], [0, 1, 2], 3)
