"""Notebook output that reads the same live and in the saved notebook (lessons 02 and 04).

A tqdm widget bar is saved as its first frame ("0%| | 0/469") and an ipywidgets panel as a
``HBox(children=…`` string: that is what GitHub, nbviewer and a fresh JupyterLab show. The
progress bar here redraws one text line in place through a display handle, so the saved
notebook holds its final state; :func:`show_widget` gives a widget a readable text fallback.
"""
import time


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where rich display works), False in a terminal or test."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes:02d}:{seconds:02d}"


def bar_text(desc: str, done: int, total: int | None, seconds: float, width: int = 30) -> str:
    """One line such as ``epoch 2/5 ██████████░░░░ 120/469 [00:03]``."""
    if total:
        filled = min(width, round(width * done / total))
        return f"{desc} {'█' * filled}{'░' * (width - filled)} {done}/{total} [{_clock(seconds)}]"
    return f"{desc} {done} [{_clock(seconds)}]"


class Progress:
    """Iterate with a progress line that redraws in place at most every ``interval`` seconds.

    In a notebook the line is a display handle updated in place, so the saved notebook shows
    the finished bar; elsewhere it falls back to tqdm in the terminal. It reads only a batch
    counter and the clock: it never synchronises with the device. ``finish(summary)`` puts a
    summary (an epoch's metrics, say) after the finished bar.
    """

    def __init__(self, iterable, total: int | None = None, desc: str = "", interval: float = 0.5,
                 enabled: bool = True):
        self.iterable, self.desc, self.interval = iterable, desc, interval
        self.total = total if total is not None else _len_or_none(iterable)
        self.enabled = enabled
        self._handle, self._line = None, ""
        self.done, self._start, self._finished = 0, None, False

    def __iter__(self):
        if not self.enabled:
            yield from self.iterable
            return
        if not in_notebook():
            from tqdm import tqdm

            yield from tqdm(self.iterable, total=self.total, desc=self.desc, leave=False)
            return
        from IPython.display import display

        self._start = last = time.perf_counter()
        self._line = bar_text(self.desc, 0, self.total, 0.0)
        self._handle = display({"text/plain": self._line}, raw=True, display_id=True)
        for item in self.iterable:
            yield item
            self.done += 1
            now = time.perf_counter()
            if now - last >= self.interval:
                self._show(bar_text(self.desc, self.done, self.total, now - self._start))
                last = now
        self._finished = True
        self._show(bar_text(self.desc, self.done, self.total or self.done, time.perf_counter() - self._start))

    def _show(self, line: str) -> None:
        self._line = line
        self._handle.update({"text/plain": line}, raw=True)

    def finish(self, summary: str) -> None:
        """Show ``summary`` after the finished bar (notebook) or on its own line (terminal).
        Called before the loop has ended (``finish("interrupted")`` after a KeyboardInterrupt),
        it first draws the bar as far as it got, so the saved notebook does not show a stale one."""
        if not self.enabled:
            return
        if self._handle is not None:
            if not self._finished:
                self._line = bar_text(self.desc, self.done, self.total, time.perf_counter() - self._start)
            self._show(f"{self._line} | {summary}")
        else:
            from tqdm import tqdm

            tqdm.write(f"{self.desc} | {summary}" if self.desc else summary)


def _len_or_none(iterable):
    try:
        return len(iterable)
    except TypeError:
        return None


def show_widget(widget, fallback: str) -> None:
    """Display an ipywidgets ``widget``; viewers without a live kernel show ``fallback``
    (for example "interactive explorer: run the notebook to move the sliders") instead of
    the widget's ``HBox(children=…`` repr."""
    from IPython.display import display

    bundle = widget._repr_mimebundle_()
    bundle = bundle[0] if isinstance(bundle, tuple) else bundle
    bundle["text/plain"] = fallback
    display(bundle, raw=True)
