"""TensorBoard and visdom behind one small interface (introduced in lesson 04).

Both loggers are callbacks for :func:`helpers.train.fit`: ``fit(..., callbacks=[logger])``
calls ``logger(epoch, metrics)`` after every epoch, and each metric becomes a line over the
epochs. ``train_loss`` and ``val_loss`` share one plot (``loss``, lines ``train`` and
``val``), as do ``train_acc``/``val_acc``; ``lr`` gets its own. Both also have
``log_scalar(name, value, step)`` for anything else, ``close()``, and work as context
managers (``with TensorBoardLogger("runs/mlp") as tb: ...``).

TensorBoard: ``TensorBoardLogger("runs/<name>")`` writes event files (tags ``loss/train``,
``loss/val``, ...). Look at them with, from the folder that holds ``runs/`` (for the
lessons: ``notebooks/``)::

    tensorboard --logdir runs --host 127.0.0.1       # then open http://127.0.0.1:6006

visdom: start a server first, in a terminal (it works offline, on 127.0.0.1 only)::

    bash course.sh visdom          # or: python -m helpers.visdom_server [--port 8097]

then ``VisdomLogger(env="lesson04")`` and open http://127.0.0.1:8097. A dashboard is never
worth a crashed training run: when no server answers, the logger warns once and does
nothing; when the server goes away mid-run, the same.
"""
import socket
import threading
import warnings
from urllib.parse import urlparse

from .train import split_name

SKIP = {"epoch"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class DashboardWarning(UserWarning):
    """A logging dashboard is unreachable; training goes on without it."""


def _numbers(metrics: dict):
    for name, value in metrics.items():
        if name in SKIP or isinstance(value, bool):
            continue
        try:
            yield name, float(value)
        except (TypeError, ValueError):
            continue  # not a number: nothing to plot


class _Logger:
    """What both loggers share: the fit-callback protocol, grouping, context management."""

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        for name, value in _numbers(metrics):
            self._scalar(name, value, int(epoch), "epoch")
        self._flush()

    def log_scalar(self, name: str, value: float, step: int) -> None:
        """Add the point (``step``, ``value``) to the line ``name``."""
        self._scalar(name, float(value), int(step), "step")

    def _scalar(self, name: str, value: float, step: int, xlabel: str) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TensorBoardLogger(_Logger):
    """Log metrics as TensorBoard scalars under ``log_dir`` (lesson 04).

    ``train_loss`` is written as the tag ``loss/train``, so TensorBoard shows the ``loss``
    curves of a run side by side. Events are flushed after every epoch.
    """

    def __init__(self, log_dir: str | None = None, flush_secs: int = 10):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=log_dir, flush_secs=flush_secs)
        self.log_dir = self.writer.log_dir

    @staticmethod
    def tag(name: str) -> str:
        """The TensorBoard tag for a metric: ``train_loss`` -> ``loss/train``, ``lr`` -> ``lr``."""
        plot, line = split_name(name)
        return plot if plot == line else f"{plot}/{line}"

    def _scalar(self, name, value, step, xlabel):
        self.writer.add_scalar(self.tag(name), value, step)

    def _flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()


def _reachable(host: str, port: int, timeout: float) -> bool:
    """True when something accepts TCP connections at host:port within ``timeout`` seconds.

    Runs in a thread so that a slow name lookup cannot stretch the wait either.
    """
    result = []

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.2)
    return bool(result)


def _client(server: str, port: int, env: str, timeout: float):
    """A visdom.Visdom whose requests time out and whose errors raise (imported lazily)."""
    import logging

    import requests
    import visdom

    class Client(visdom.Visdom):
        # visdom's own posts have no timeout: a stalled server would hang training forever.
        @property
        def session(self):
            if self._session is None:
                self._session = requests.Session()
                # Talk to a local server directly, even when HTTP(S)_PROXY is set.
                self._session.trust_env = urlparse(self.server).hostname not in LOOPBACK
            return self._session

        def _handle_post(self, url, data=None):
            response = self.session.post(url, data=data or {}, timeout=timeout)
            # An HTTP error means "not a visdom server" or "not logging": say so, don't hide it.
            response.raise_for_status()
            return response.text

    # use_incoming_socket=False: no websocket thread and no 5 s wait for it; visdom logs a
    # warning about that choice (through the deprecated logger.warn), which is noise here.
    visdom_log = logging.getLogger("visdom")
    level = visdom_log.level
    visdom_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="visdom")
            return Client(server=server, port=port, env=env, raise_exceptions=True,
                          use_incoming_socket=False)
    finally:
        visdom_log.setLevel(level)


def _cause(exc: BaseException) -> str:
    """The root of an error: visdom re-raises a requests error as a bare ConnectionError."""
    while exc.__cause__ or exc.__context__:
        exc = exc.__cause__ or exc.__context__
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


class VisdomLogger(_Logger):
    """Log metrics as live line plots in a visdom environment (lesson 04).

    One window per plot (``loss``, ``acc``, ``lr``...), with one line per split (``train``,
    ``val``); a new logger on the same ``env`` starts its windows afresh. Start the server
    first: ``bash course.sh visdom``. Without one, this warns once (within a second or two)
    and turns into a no-op; if the server dies or stalls mid-run, it warns once and stops.
    ``timeout`` bounds every request to the server, in seconds.
    """

    def __init__(self, env: str = "main", server: str = "http://127.0.0.1", port: int = 8097,
                 timeout: float = 2.0):
        self.env, self.port, self.timeout = env, int(port), float(timeout)
        self.server = server if "://" in server else f"http://{server}"
        self.viz = None
        self.windows: set[str] = set()
        host = urlparse(self.server).hostname or "127.0.0.1"
        if not _reachable(host, self.port, timeout=min(1.0, self.timeout)):
            self._disable("no server is listening", stacklevel=3)
            return
        try:
            self.viz = _client(self.server, self.port, env, self.timeout)
        except Exception as exc:
            self._disable(f"no visdom server answers ({_cause(exc)})", stacklevel=3)

    @property
    def enabled(self) -> bool:
        """False once the logger has given up (no server, or the server went away)."""
        return self.viz is not None

    def _disable(self, why: str, stacklevel: int = 4) -> None:
        self.viz = None
        port = "" if self.port == 8097 else f" --port {self.port}"
        warnings.warn(
            f"visdom at {self.server}:{self.port}: {why}. Visdom logging is off for this logger; "
            "training goes on. To see live plots, start a server in a terminal with "
            f"`bash course.sh visdom{port}` (or `python -m helpers.visdom_server{port}`), "
            "then create the logger again.",
            DashboardWarning, stacklevel=stacklevel)

    def _scalar(self, name, value, step, xlabel):
        if self.viz is None:
            return
        import numpy as np

        win, line = split_name(name)
        first = win not in self.windows
        try:
            # The first point of a window replaces any window of that name (an older run);
            # later points are appended, to the line ``line`` (created when new).
            self.viz.line(Y=np.array([value]), X=np.array([step]), win=win, env=self.env,
                          name=line, update=None if first else "append",
                          opts=dict(title=win, xlabel=xlabel, showlegend=True) if first else None)
        except Exception as exc:
            self._disable(f"the server went away ({_cause(exc)})")
            return
        self.windows.add(win)

    def close(self):
        if self.viz is not None and self.viz._session is not None:
            self.viz._session.close()
        self.viz = None
