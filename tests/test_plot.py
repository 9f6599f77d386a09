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


def test_live_curves_redraws_in_place_after_every_epoch(monkeypatch):
    import IPython.display

    shown = []  # (what, epochs drawn in the loss panel) per display call

    class Handle:
        def update(self, fig):
            shown.append(("update", list(fig.axes[0].lines[0].get_xdata())))

    def display(fig, display_id=False):
        assert display_id is True  # an updatable output, not a new figure per epoch
        shown.append(("display", list(fig.axes[0].lines[0].get_xdata())))
        return Handle()

    monkeypatch.setattr(plot, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    curves = plot.LiveCurves()
    for epoch in (1, 2, 3):
        curves(epoch, {"epoch": epoch, "train_loss": 1.0 / epoch})
    assert shown == [("display", [1]), ("update", [1, 2]), ("update", [1, 2, 3])]
    assert plt.get_fignums() == []  # each figure closed once shown


def _pixels(ax) -> np.ndarray:
    return np.asarray(ax.images[0].get_array())


def test_show_images_accepts_common_layouts_and_rejects_others():
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    fig = plot.show_images(images, labels=torch.tensor([4, 3, 2, 1, 0]), ncols=3, class_names=list("abcde"))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == list("edcba") and len(fig.axes) == 6
    assert np.allclose(_pixels(fig.axes[1]), images[1].numpy() / 255)  # in order, scaled to [0, 1]
    assert len(fig.axes[5].images) == 0 and not fig.axes[5].axison
    normalised = (torch.rand(2, 3, 8, 8) - 0.5) / 0.2
    fig = plot.show_images(normalised, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    assert len(fig.axes) == 8
    # Un-normalised (x * std + mean), channels last for imshow.
    assert np.allclose(_pixels(fig.axes[1]), (normalised[1] * 0.2 + 0.5).clamp(0, 1).permute(1, 2, 0).numpy(),
                       atol=1e-6)
    with pytest.raises(ValueError, match=r"got shape \(2, 2, 8, 8\)"):
        plot.show_images(torch.zeros(2, 2, 8, 8))


def test_confusion_matrix_counts_pairs():
    targets = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2, 1])
    predictions = torch.tensor([0, 1, 1, 1, 2, 0, 2, 2, 0])
    cm = plot.confusion_matrix(targets, predictions, 3)
    # Rows are the true classes, columns the predictions: no row has its column's sum.
    assert torch.equal(cm, torch.tensor([[1, 2, 0], [1, 1, 0], [1, 0, 3]]))
    fig = plot.plot_confusion_matrix(cm, class_names=["a", "b", "c"], normalize=True)
    written = [float(t.get_text()) for t in fig.axes[0].texts]
    rates = cm.double() / cm.sum(1, keepdim=True)  # each row: where that true class went
    assert written == pytest.approx(rates.flatten().tolist(), abs=0.005)
    counts = plot.plot_confusion_matrix(cm)
    assert [t.get_text() for t in counts.axes[0].texts] == [str(int(v)) for v in cm.flatten()]
    assert counts.axes[0].get_ylabel() == "true" and counts.axes[0].get_xlabel() == "predicted"


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="3 targets but 2 predictions"):
        plot.confusion_matrix([0, 1, 2], [0, 1], 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        plot.confusion_matrix([0, 1, 3], [0, 1, 2], 3)


def test_show_filters_draws_each_filter_stretched_on_its_own():
    weight = torch.zeros(3, 1, 2, 3)
    weight[0, 0] = torch.tensor([[0., 1, 2], [3, 4, 5]])  # non-square, asymmetric: catches transposes
    weight[1, 0] = -10 * weight[0, 0]                     # another scale and sign
    layer = torch.nn.Conv2d(1, 3, (2, 3))
    with torch.no_grad():
        layer.weight.copy_(weight)
    fig = plot.show_filters(layer, ncols=2)  # a layer or its weight
    drawn = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(drawn) == 3
    assert np.allclose(drawn[0], [[0, .2, .4], [.6, .8, 1]])
    assert np.allclose(drawn[1], [[1, .8, .6], [.4, .2, 0]])
    assert np.allclose(drawn[2], 0.5)  # a constant filter is mid-grey, not a division by zero
    colour = plot.show_filters(torch.randn(4, 3, 5, 5))
    assert colour.axes[0].images[0].get_array().shape == (5, 5, 3)
    with pytest.raises(ValueError, match=r"weight\[:, c:c\+1\]"):
        plot.show_filters(torch.randn(4, 16, 3, 3))


def test_feature_maps_hooks_named_layers_and_restores_the_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU())
    model.train()
    x = torch.randn(4, 1, 6, 6)
    maps = plot.feature_maps(model, x, ["2", "0"])
    assert list(maps) == ["2", "0"]
    assert torch.equal(maps["0"], model[0](x).detach())
    model.eval()
    assert torch.allclose(maps["2"], model(x).detach())  # taken in eval mode (BN's running statistics)
    model.train()
    plot.feature_maps(model, x, ["1"])
    assert model.training and not model[1]._forward_hooks  # mode restored, hooks removed
    with pytest.raises(ValueError, match="no submodule named"):
        plot.feature_maps(model, x, ["conv1"])


def test_show_feature_maps_one_row_per_layer():
    a = torch.randn(2, 3, 2, 2)
    a[0, 1] = torch.tensor([[3., 0], [1, 2]])
    fig = plot.show_feature_maps({"a": a, "b": torch.ones(1, 1, 4, 4)}, max_channels=2)
    rows = np.array(fig.axes).reshape(2, 2)
    assert np.allclose(rows[0][1].images[0].get_array(), [[1, 0], [1 / 3, 2 / 3]])  # image 0, channel 1
    assert "a" in rows[0][0].get_ylabel() and "(3, 2, 2)" in rows[0][0].get_ylabel()
    assert not rows[1][1].images  # layer b has one channel: its second panel stays empty
    with pytest.raises(ValueError, match=r"\[b, c, h, w\]"):
        plot.show_feature_maps({"flat": torch.zeros(2, 10)})


def test_compare_curves_draws_one_line_per_run_in_each_panel():
    runs = {"plain": {"train_loss": [2.0, 1.5, 1.2], "val_acc": [0.3, 0.4, 0.5]},
            "residual": {"train_loss": [1.8, 1.0, 0.7], "val_acc": [0.35, 0.55, 0.6]}}
    fig = plot.compare_curves(runs, metrics=("train_loss", "val_acc"))
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["plain", "residual"]
    assert list(loss_ax.lines[1].get_ydata()) == [1.8, 1.0, 0.7]   # each run's own values
    assert list(acc_ax.lines[0].get_xdata()) == [1, 2, 3]          # epochs count from 1, as fit's do
    assert acc_ax.get_title() == "val_acc"
    with pytest.raises(ValueError, match=r"no run recorded \['val_loss'\]"):
        plot.compare_curves(runs, metrics=("val_loss",))


def test_show_top_classes_draws_the_k_most_probable_best_first():
    probabilities = torch.tensor([0.05, 0.6, 0.1, 0.25])
    image = torch.zeros(3, 4, 5, dtype=torch.uint8)
    image[0] = 255                                                 # a red image, not square: catches transposes
    fig = plot.show_top_classes(image, probabilities, ["a", "b", "c", "d"], k=3, title="test")
    picture, bars = fig.axes
    assert picture.images[0].get_array().shape == (4, 5, 3)
    assert np.allclose(picture.images[0].get_array()[0, 0], [1, 0, 0])  # uint8 scaled to [0, 1]
    assert [t.get_text() for t in bars.get_yticklabels()] == ["b", "d", "c"]
    assert [p.get_width() for p in bars.patches] == pytest.approx([0.6, 0.25, 0.1])
    assert bars.yaxis_inverted()                                   # the best class is drawn on top
    with pytest.raises(ValueError, match="4 probabilities for 3 class names"):
        plot.show_top_classes(image, probabilities, ["a", "b", "c"])
    with pytest.raises(ValueError, match="k must be between 1 and 4"):
        plot.show_top_classes(image, probabilities, ["a", "b", "c", "d"], k=5)


def test_format_table_aligns_numbers_right_and_marks_missing_values():
    rows = [{"model": "LeNet-5", "params": 62006, "acc": 0.98765},
            {"model": "ResNet-18", "params": 11173962}]
    lines = plot.format_table(rows).splitlines()
    assert lines[0].split("|")[0].strip() == "model" and len(lines) == 4
    assert lines[2] == "LeNet-5   |     62,006 | 0.9877"
    assert lines[3] == "ResNet-18 | 11,173,962 |      –"
    picked = plot.format_table(rows, columns=["params", "model"]).splitlines()
    assert picked[0].startswith("    params | model")
    with pytest.raises(ValueError, match="at least one column"):
        plot.format_table([])
