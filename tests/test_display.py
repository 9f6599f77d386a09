"""helpers.display: a progress line and widgets that read well in a saved notebook."""
import ipywidgets
import pytest

from helpers import display as course_display
from helpers.display import Progress, bar_text, show_widget


def test_bar_text_fills_in_proportion_and_shows_the_clock():
    """Bug caught: the bar filled out of proportion to done/total, or the clock's minutes and seconds
    miscounted."""
    assert bar_text("epoch 1/3", 0, 4, 0.0, width=8) == "epoch 1/3 ░░░░░░░░ 0/4 [00:00]"
    assert bar_text("epoch 1/3", 1, 4, 65.2, width=8) == "epoch 1/3 ██░░░░░░ 1/4 [01:05]"
    assert bar_text("epoch 1/3", 4, 4, 3.0, width=8) == "epoch 1/3 ████████ 4/4 [00:03]"
    assert bar_text("x", 7, None, 1.0) == "x 7 [00:01]"


class FakeHandle:
    def __init__(self, log):
        self.log = log

    def update(self, bundle, raw):
        self.log.append(bundle["text/plain"])


@pytest.fixture
def notebook_display(monkeypatch):
    """Pretend to run in a notebook; record what would be displayed."""
    shown = []

    def fake_display(bundle, raw=False, display_id=False):
        assert raw
        shown.append(bundle)
        return FakeHandle(shown_lines) if display_id else None

    shown_lines = []
    monkeypatch.setattr(course_display, "in_notebook", lambda: True)
    monkeypatch.setattr("IPython.display.display", fake_display)
    return shown, shown_lines


def test_progress_in_a_notebook_yields_everything_and_ends_on_the_finished_bar(notebook_display):
    """Bug caught: the progress bar losing or repeating items, or the saved notebook not ending on the full
    bar."""
    shown, updates = notebook_display
    items = list(Progress(range(5), desc="epoch 1/1", interval=0.0))
    assert items == [0, 1, 2, 3, 4]
    assert shown[0]["text/plain"].startswith("epoch 1/1 ░") and " 0/5 " in shown[0]["text/plain"]
    assert updates[-1].startswith("epoch 1/1 " + "█" * 30 + " 5/5 [")
    assert len(updates) == 6  # one per item (interval 0), then the final state


def test_progress_redraws_at_most_once_per_interval(notebook_display):
    """Bug caught: a redraw per batch (the interval ignored), which floods the notebook and slows training."""
    _, updates = notebook_display
    list(Progress(range(1000), desc="e", interval=3600))
    assert len(updates) == 1 and " 1000/1000 " in updates[0]


def test_progress_without_a_length_counts_and_ends_with_the_count(notebook_display):
    """Bug caught: an iterable without len() crashing the bar or ending on 0/None."""
    _, updates = notebook_display
    list(Progress(iter(range(3)), desc="e", interval=3600))
    assert " 3/3 " in updates[-1]


def test_progress_outside_a_notebook_and_disabled_just_iterates(capsys):
    """Bug caught: Progress printing to stdout in a terminal or when disabled, or dropping items."""
    assert list(Progress(range(3), desc="e")) == [0, 1, 2]
    assert list(Progress(range(3), enabled=False)) == [0, 1, 2]
    assert capsys.readouterr().out == ""


def test_show_widget_replaces_the_text_fallback_and_keeps_the_widget(monkeypatch):
    """Bug caught: the saved notebook showing the widget's HBox(children=...) repr instead of the fallback
    text."""
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda bundle, raw=False: shown.append(bundle))
    panel = ipywidgets.HBox([ipywidgets.IntSlider()])
    show_widget(panel, "explorer: run the notebook to use it")
    (bundle,) = shown
    assert bundle["text/plain"] == "explorer: run the notebook to use it"
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.model_id


def test_finish_puts_the_summary_after_the_finished_bar(notebook_display):
    """Bug caught: the epoch's summary replacing the bar, or put after a stale one."""
    _, updates = notebook_display
    bar = Progress(range(2), desc="epoch 1/2", interval=3600)
    list(bar)
    bar.finish("train_loss 0.5")
    assert updates[-1].startswith("epoch 1/2 " + "█" * 30 + " 2/2 [") and updates[-1].endswith("] | train_loss 0.5")


def test_finish_in_a_terminal_prints_the_summary_with_the_description(capsys):
    """Bug caught: the terminal summary without its epoch, or printed by a disabled bar."""
    bar = Progress(range(2), desc="epoch 1/2")
    list(bar)
    bar.finish("train_loss 0.5")
    Progress(range(2), enabled=False).finish("hidden")
    assert capsys.readouterr().out == "epoch 1/2 | train_loss 0.5\n"


def test_a_disabled_progress_shows_nothing_even_in_a_notebook(notebook_display):
    """Bug caught: progress=False still drawing (and finishing) a bar in a notebook."""
    shown, updates = notebook_display
    bar = Progress(range(3), desc="e", enabled=False)
    assert list(bar) == [0, 1, 2]
    bar.finish("train_loss 0.5")
    assert shown == [] and updates == []


def test_an_interrupted_bar_shows_how_far_it_got(notebook_display):
    """Bug caught: after a KeyboardInterrupt the saved bar stayed at its last redraw (often 0)."""
    _, updates = notebook_display
    bar = Progress(range(10), desc="epoch 1/1", interval=3600)  # no redraw during the loop
    for i in bar:
        if i == 3:
            break
    bar.finish("interrupted")
    assert " 3/10 " in updates[-1] and updates[-1].endswith(" | interrupted")  # 0, 1, 2 done; 3 cut short


def test_bar_text_rounds_to_the_nearest_cell_and_never_overflows():
    """Bug caught: the filled part truncated (1/3 of 8 cells drawn as 2, not 3), or a count past the
    total drawing a bar longer than its width."""
    assert bar_text("e", 1, 3, 0.0, width=8) == "e ███░░░░░ 1/3 [00:00]"
    assert bar_text("e", 5, 4, 0.0, width=8) == "e ████████ 5/4 [00:00]"


def test_a_plain_ipython_shell_is_not_a_notebook(monkeypatch):
    """Bug caught: any IPython shell (a terminal `ipython`) taken for a notebook, where display
    handles do not redraw in place."""
    import IPython

    class TerminalShell:  # no .kernel: not a Jupyter kernel
        pass

    class KernelShell:
        kernel = object()

    monkeypatch.setattr(IPython, "get_ipython", lambda: TerminalShell())
    assert course_display.in_notebook() is False
    monkeypatch.setattr(IPython, "get_ipython", lambda: KernelShell())
    assert course_display.in_notebook() is True
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert course_display.in_notebook() is False
