"""TensorBoard and visdom behind one small interface (introduced in lesson 04).

Both loggers are callbacks for :func:`helpers.train.fit`: ``fit(..., callbacks=[logger])``
calls ``logger(epoch, metrics)`` after every epoch, and each metric becomes a line over the
epochs. ``train_loss`` and ``val_loss`` are grouped under ``loss``: visdom draws them as two
lines (``train``, ``val``) of one plot, TensorBoard as the tags ``loss/train`` and ``loss/val``,
one chart each under the heading ``loss``; ``train_acc``/``val_acc`` likewise, and ``lr`` gets
its own. Both also have
``log_scalar(name, value, step)`` for anything else, ``close()``, ``enabled``, and work as
context managers (``with TensorBoardLogger(runs_dir() / "mlp") as tb: ...``).

Every lesson keeps its runs in one folder, :func:`helpers.config.runs_dir` (``runs/`` at the
repository's root; ``COURSE_RUNS_DIR`` moves it).

TensorBoard: ``TensorBoardLogger(runs_dir() / "<name>")`` writes event files (tags
``loss/train``, ``loss/val``, ...); without a folder it picks ``runs/<date>-<time>``. Look at
them with, from the repository's root::

    tensorboard --logdir runs --host 127.0.0.1       # then open http://127.0.0.1:6006

visdom: start a server first, in a terminal (it works offline, on 127.0.0.1 only)::

    bash course.sh visdom          # or: python -m helpers.visdom_server [--port 8097]

then ``VisdomLogger()`` logs to the environment ``pytorch-course``, the one the server's
printed address opens (http://127.0.0.1:8097/env/pytorch-course).

Under ``torchrun`` (lesson 09) only rank 0 logs; on the other ranks both loggers do nothing,
without a word. A dashboard is never worth a crashed training run: when no visdom server answers, or the
server goes away mid-run, or TensorBoard's folder cannot be written, the logger warns once
(a DashboardWarning) and does nothing from then on.
"""
import atexit
import itertools
import os
import socket
import threading
import time
import warnings
import weakref
from urllib.parse import urlparse

from .config import VISDOM_ENV, runs_dir
from .device import is_main_process
from .train import split_name

SKIP = {"epoch"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_event_files = itertools.count()  # tells apart the event files one process starts in one second
_open_tensorboard_loggers: "weakref.WeakSet[TensorBoardLogger]" = weakref.WeakSet()
_warned_plain_http: set[str] = set()


@atexit.register
def _flush_at_exit() -> None:
    """Write what open TensorBoard loggers still hold when the process ends (a kernel shut
    down or restarted without ``close()``)."""
    for logger in list(_open_tensorboard_loggers):
        logger._flush()


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


def _event_record(**fields) -> bytes:
    """One TensorBoard ``Event`` as a TFRecord, the unit of an event file."""
    import io

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.record_writer import RecordWriter

    buffer = io.BytesIO()
    RecordWriter(buffer).write(Event(wall_time=time.time(), **fields).SerializeToString())
    return buffer.getvalue()


class TensorBoardLogger(_Logger):
    """Log metrics as TensorBoard scalars under ``log_dir`` (lesson 04).

    ``train_loss`` is written as the tag ``loss/train``, so TensorBoard shows the ``loss``
    curves of a run side by side. ``log_dir`` defaults to ``runs/<date>-<time>`` in the
    course's one runs folder (:func:`helpers.config.runs_dir`). Events are appended to the
    event file after every epoch, on ``close()``, and by ``log_scalar`` at most every
    ``flush_secs`` seconds, and when the process ends (even without ``close()``).

    The logger writes from the calling thread (torch's SummaryWriter writes from a thread of
    its own, whose errors would surface as tracebacks). When the folder cannot be written (it
    is under a file, not writable, removed mid-run, or the disk is full), it warns once with
    a DashboardWarning naming the folder and does nothing from then on: training goes on.
    """

    def __init__(self, log_dir=None, flush_secs: float = 10):
        if log_dir is None:
            log_dir = runs_dir() / time.strftime("%Y%m%d-%H%M%S")
        self.log_dir = str(log_dir)
        self.flush_secs = flush_secs
        self.path = os.path.join(self.log_dir, f"events.out.tfevents.{int(time.time()):010d}."
                                 f"{socket.gethostname()}.{os.getpid()}.{next(_event_files)}")
        self._pending: list[bytes] | None = [_event_record(file_version="brain.Event:2")]
        self._flushed_at = time.monotonic()
        if not is_main_process():  # under torchrun, rank 0 logs for every rank (lesson 09)
            self._pending = None
            return
        try:
            os.makedirs(self.log_dir, exist_ok=True)
        except OSError as exc:
            self._disable(exc, stacklevel=3)
            return
        self._flush()
        _open_tensorboard_loggers.add(self)

    @property
    def enabled(self) -> bool:
        """False once the logger has given up (the folder could not be written)."""
        return self._pending is not None

    @staticmethod
    def tag(name: str) -> str:
        """The TensorBoard tag for a metric: ``train_loss`` -> ``loss/train``, ``lr`` -> ``lr``."""
        plot, line = split_name(name)
        return plot if plot == line else f"{plot}/{line}"

    def _scalar(self, name, value, step, xlabel):
        if self._pending is None:
            return
        from tensorboard.compat.proto.summary_pb2 import Summary

        summary = Summary(value=[Summary.Value(tag=self.tag(name), simple_value=value)])
        self._pending.append(_event_record(step=step, summary=summary))
        if xlabel == "step" and time.monotonic() - self._flushed_at > self.flush_secs:
            self._flush()

    def _flush(self):
        if not self._pending:
            return
        try:  # append, never create: a folder removed mid-run stays removed
            with open(self.path, "ab") as events:
                events.write(b"".join(self._pending))
        except OSError as exc:
            self._disable(exc)
            return
        self._pending.clear()
        self._flushed_at = time.monotonic()

    def _disable(self, exc: OSError, stacklevel: int = 4) -> None:
        self._pending = None
        warnings.warn(
            f"TensorBoard cannot write to {self.log_dir} ({type(exc).__name__}: {exc.strerror or exc}). "
            "TensorBoard logging is off for this logger; training goes on. To log, create the logger "
            "again with a folder you can write to.", DashboardWarning, stacklevel=stacklevel)

    def close(self):
        self._flush()
        self._pending = None
        _open_tensorboard_loggers.discard(self)


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
    ``val``); a new logger on the same ``env`` starts its windows afresh. ``env`` defaults to
    ``pytorch-course``, the environment ``bash course.sh visdom`` opens. Start the server
    first. Without one, this warns once (after a probe of at most a second) and turns into a
    no-op; if the server dies or stalls mid-run, it warns once and stops. ``timeout`` bounds
    every request to the server, in seconds.
    """

    def __init__(self, env: str = VISDOM_ENV, server: str = "http://127.0.0.1", port: int = 8097,
                 timeout: float = 2.0):
        self.env, self.port, self.timeout = env, int(port), float(timeout)
        self.server = server if "://" in server else f"http://{server}"
        self.viz = None
        self.windows: set[str] = set()
        if not is_main_process():  # under torchrun, rank 0 logs for every rank (lesson 09)
            return
        host = urlparse(self.server).hostname or "127.0.0.1"
        if urlparse(self.server).scheme == "http" and host not in LOOPBACK and host not in _warned_plain_http:
            _warned_plain_http.add(host)
            warnings.warn(f"VisdomLogger sends your metrics to {host} in plain HTTP, which anyone on the network "
                          "between can read or change: prefer a server on this machine (127.0.0.1), or reach "
                          "the remote one through an SSH tunnel (ssh -L 8097:127.0.0.1:8097 host)",
                          UserWarning, stacklevel=2)
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
