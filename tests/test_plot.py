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
    """Bug caught: LiveCurves grouping by split instead of by metric, plotting epoch or lr, or losing a
    line's label."""
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
    """Bug caught: the derivative line drawn from the function itself, or the unused panel left with axes."""
    x = torch.linspace(-2, 2, 5)
    fig = plot.function_grid({"square": lambda t: t ** 2, "relu": torch.relu}, x=x, ncols=3)
    square_ax = fig.axes[0]
    f_line, df_line = square_ax.lines[:2]
    assert np.allclose(f_line.get_ydata(), (x ** 2).numpy())
    assert np.allclose(df_line.get_ydata(), (2 * x).numpy())
    assert not fig.axes[2].axison  # the unused panel is blank


def test_surface_draws_trajectories_on_both_views():
    """Bug caught: a trajectory's x and y swapped on the contour view, or its end marker on the start."""
    def bowl(x, y):
        return x ** 2 + y ** 2

    path = np.array([[2.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    fig = plot.surface(bowl, xlim=(-3, 3), ylim=(-3, 3), n=30, trajectories=[path])
    ax3, ax2 = fig.axes[0], fig.axes[1]
    assert ax3.name == "3d"
    assert np.allclose(ax2.lines[0].get_xdata(), path[:, 0])
    assert ax2.lines[-1].get_xdata()[0] == 0.0  # the end point is marked


def test_live_curves_redraws_in_place_after_every_epoch(monkeypatch):
    """Bug caught: a new figure per epoch (not one updated output), or figures left open."""
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
    """Bug caught: images out of order, titles not from class_names, uint8 not scaled, mean and std swapped
    when un-normalising."""
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
    """Bug caught: a transposed confusion matrix, rows normalised by column sums, or axis labels swapped."""
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
    """Bug caught: targets and predictions of different lengths, or a class index out of range, counted
    silently."""
    with pytest.raises(ValueError, match="3 targets but 2 predictions"):
        plot.confusion_matrix([0, 1, 2], [0, 1], 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        plot.confusion_matrix([0, 1, 3], [0, 1, 2], 3)


def test_show_filters_draws_each_filter_stretched_on_its_own():
    """Bug caught: filters transposed, stretched over all filters together, a constant one divided by zero,
    or a layer not accepted."""
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
    """Bug caught: feature maps taken in training mode (BatchNorm's batch statistics), hooks left behind,
    or the mode not restored."""
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
    """Bug caught: a map other than image 0's channel c drawn, or a layer with fewer channels filling every
    panel."""
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
    """Bug caught: epochs counted from 0 (fit's start at 1), runs unlabelled, or a metric no run recorded
    drawn as empty."""
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
    """Bug caught: the least probable classes drawn, the best one at the bottom, or a uint8 image not
    scaled."""
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
    """Bug caught: numbers aligned left, ints without separators, floats not to 4 digits, or a missing
    value shown as None."""
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


# ------------------------------------------------------------------ plotting arguments
def test_live_curves_has_a_legend_and_the_title_it_was_given():
    """Bug caught: LiveCurves' title argument dropped, or its panels drawn without a legend."""
    curves = plot.LiveCurves(title="MLP on MNIST")
    curves(1, {"train_loss": 1.0, "val_loss": 1.2, "train_acc": 0.5})
    fig = curves.figure()
    assert fig.get_suptitle() == "MLP on MNIST"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["train_loss", "val_loss"]
    assert plot.LiveCurves().figure().get_suptitle() == ""


def test_function_grid_draws_every_function_and_no_derivative_when_asked():
    """Bug caught: rows counted with // (4 functions in 3 columns get one row, the 4th is lost), or
    derivatives=False still drawing the derivative."""
    x = torch.linspace(-1, 1, 5)
    functions = {"a": torch.sin, "b": torch.cos, "c": torch.tanh, "d": torch.sigmoid}
    fig = plot.function_grid(functions, x=x, ncols=3, derivatives=False)
    assert len(fig.axes) == 6 and [ax.get_title() for ax in fig.axes[:4]] == ["a", "b", "c", "d"]
    assert [len(ax.lines) for ax in fig.axes[:4]] == [3, 3, 3, 3]  # the function and the two axes' lines
    assert np.allclose(fig.axes[3].lines[0].get_ydata(), torch.sigmoid(x).numpy())
    assert [ax.axison for ax in fig.axes[4:]] == [False, False]


def test_surface_uses_both_limits_log_levels_and_draws_x_against_y():
    """Bug caught: ylim ignored (the x range used for y), log_levels inverted, or a trajectory's x and
    y swapped on the contour view."""
    def f(x, y):
        return x ** 2 + 2 * y ** 2 + 0.5

    path = np.array([[2.0, -3.0], [1.0, -1.0], [0.5, 0.0]])  # not symmetric in x and y
    fig = plot.surface(f, xlim=(-1, 2), ylim=(-3, 1), n=20, trajectories=[path])
    contour_ax = fig.axes[1]
    assert contour_ax.get_xlim() == pytest.approx((-1, 2)) and contour_ax.get_ylim() == pytest.approx((-3, 1))
    xs, ys = torch.linspace(-1, 2, 20), torch.linspace(-3, 1, 20)
    z = f(*torch.meshgrid(xs, ys, indexing="xy"))
    levels = contour_ax.collections[0].levels
    assert np.allclose(levels, np.geomspace(float(z.min()), float(z.max()), 30))  # log-spaced
    assert np.allclose(contour_ax.lines[0].get_xdata(), path[:, 0])
    assert np.allclose(contour_ax.lines[0].get_ydata(), path[:, 1])
    linear = plot.surface(f, xlim=(-1, 2), ylim=(-3, 1), n=20, log_levels=False).axes[1].collections[0].levels
    assert np.allclose(np.diff(linear), np.diff(linear)[0])  # evenly spaced


def test_show_images_passes_the_colour_map_and_titles_plain_labels():
    """Bug caught: the cmap argument ignored, or a tensor label titled 'tensor(4)' instead of '4'."""
    fig = plot.show_images(torch.zeros(2, 1, 4, 4), labels=torch.tensor([4, 7]), cmap="viridis")
    assert fig.axes[0].images[0].get_cmap().name == "viridis"
    assert [fig.axes[0].get_title(), fig.axes[1].get_title()] == ["4", "7"]


def test_confusion_matrix_refuses_negative_predictions():
    """Bug caught: a negative index (-1) let through, which counts as another class's cell."""
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        plot.confusion_matrix([1, 2], [-1, 2], 3)


def test_plot_confusion_matrix_writes_each_count_in_its_cell_and_names_the_classes():
    """Bug caught: the numbers drawn transposed (cm[i, j] at column i, row j), or class_names ignored."""
    cm = torch.tensor([[5, 1, 0], [2, 7, 0], [0, 3, 9]])
    ax = plot.plot_confusion_matrix(cm, class_names=["cat", "dog", "frog"]).axes[0]
    for text in ax.texts:
        column, row = text.get_position()
        assert text.get_text() == str(int(cm[int(row), int(column)]))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "frog"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "frog"]


def test_compare_curves_takes_a_metric_that_only_some_runs_have_and_the_title():
    """Bug caught: a metric refused unless every run recorded it (a run without validation), or the
    title argument dropped."""
    runs = {"with val": {"train_loss": [1.0, 0.5], "val_acc": [0.4, 0.6]}, "without": {"train_loss": [0.9, 0.4]}}
    fig = plot.compare_curves(runs, metrics=("train_loss", "val_acc"), title="two runs")
    assert [line.get_label() for line in fig.axes[1].lines] == ["with val"]
    assert fig.get_suptitle() == "two runs"


def test_show_top_classes_scales_mid_grey_and_checks_k():
    """Bug caught: a uint8 image clamped instead of divided by 255 (grey drawn white), k=0 accepted, or
    the probability axis not 0 to 1."""
    image = torch.full((1, 3, 3), 128, dtype=torch.uint8)
    fig = plot.show_top_classes(image, [0.7, 0.3], ["a", "b"], k=2)
    picture, bars = fig.axes
    assert np.allclose(picture.images[0].get_array(), 128 / 255)
    assert bars.get_xlim() == (0, 1)
    with pytest.raises(ValueError, match="k must be between 1 and 2, got 0"):
        plot.show_top_classes(image, [0.7, 0.3], ["a", "b"], k=0)


def test_format_table_numbers_bools_and_long_headers():
    """Bug caught: floats written with 4 decimals instead of 4 significant digits, a bool written as 1
    (or its column aligned as numbers), or a column narrower than its header."""
    rows = [{"a_long_column_name": 1, "time_s": 1234.5678, "ok": True},
            {"a_long_column_name": 22, "time_s": 0.000123456, "ok": False}]
    lines = plot.format_table(rows).splitlines()
    assert lines[0] == "a_long_column_name |    time_s | ok"
    assert lines[1] == "-------------------+-----------+------"
    assert lines[2] == "                 1 |      1235 | True"
    assert lines[3] == "                22 | 0.0001235 | False"
