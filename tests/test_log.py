"""helpers.log without a visdom server: TensorBoard round trips, and a visdom logger that gives up.

Tests against a real visdom server (and one that dies mid-run) are in test_visdom_server.py.
"""
import contextlib
import errno
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from helpers import config, data, log, train

EPOCHS = {
    1: {"epoch": 1, "train_loss": 1.5, "train_acc": 0.40, "lr": 0.1, "val_loss": 1.7, "val_acc": 0.35},
    2: {"epoch": 2, "train_loss": 0.9, "train_acc": 0.65, "lr": 0.05, "val_loss": 1.1, "val_acc": 0.60},
    3: {"epoch": 3, "train_loss": 0.4, "train_acc": 0.90, "lr": 0.025, "val_loss": 0.8, "val_acc": 0.75},
}


def _closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound by the OS, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_logger_writes_scalars_that_read_back(tmp_path):
    """Bug caught: TensorBoard tags in the wrong order (train/loss), a wrong step, or log_scalar points
    lost."""
    with log.TensorBoardLogger(str(tmp_path / "runs" / "toy")) as tb:
        assert tb.log_dir == str(tmp_path / "runs" / "toy")
        for epoch, metrics in EPOCHS.items():
            tb(epoch, metrics)
        tb.log_scalar("grad_norm", 2.5, 7)
        tb.log_scalar("grad_norm", 1.25, 8)
    scalars = _scalars(tmp_path / "runs" / "toy")
    assert set(scalars) == {"loss/train", "loss/val", "acc/train", "acc/val", "lr", "grad_norm"}
    for name in ("train_loss", "val_loss", "train_acc", "val_acc", "lr"):
        expected = [(e, m[name]) for e, m in EPOCHS.items()]
        got = scalars[log.TensorBoardLogger.tag(name)]
        assert [s for s, _ in got] == [s for s, _ in expected], name
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6), name
    assert scalars["grad_norm"] == [(7, 2.5), (8, 1.25)]


def test_tensorboard_logger_flushes_each_epoch_for_live_viewing(tmp_path):
    """Bug caught: an epoch's scalars held back until close(), so TensorBoard shows nothing while training
    runs."""
    tb = log.TensorBoardLogger(str(tmp_path), flush_secs=3600)
    tb(1, EPOCHS[1])
    assert _scalars(tmp_path)["loss/val"] == [(1, pytest.approx(1.7))]  # before close()
    tb.close()


def test_tensorboard_logger_is_a_fit_callback(tmp_path):
    """Bug caught: the logger's values not fit's history, or the epoch number logged as a curve."""
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    loader = data.DeviceLoader(x, x[:, :3].argmax(1), batch_size=16)
    model = nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with log.TensorBoardLogger(str(tmp_path)) as tb:
        history = train.fit(model, loader, optimizer, epochs=2, val_loader=loader,
                            callbacks=[tb], progress=False)
    scalars = _scalars(tmp_path)
    assert scalars["loss/train"] == [(1, pytest.approx(history["train_loss"][0])),
                                     (2, pytest.approx(history["train_loss"][1]))]
    assert [s for s, _ in scalars["acc/val"]] == [1, 2]
    assert "epoch" not in scalars


# ------------------------------------------------------------- TensorBoard never kills training
def _fit_with(callbacks, epochs=3):
    torch.manual_seed(0)
    x = torch.randn(32, 5)
    model = nn.Linear(5, 3)
    return train.fit(model, data.DeviceLoader(x, x[:, :3].argmax(1), batch_size=16),
                     torch.optim.SGD(model.parameters(), lr=0.1), epochs=epochs, callbacks=callbacks,
                     progress=False)


@pytest.fixture
def thread_errors(monkeypatch):
    """Exceptions raised in background threads (a writer thread's traceback, say)."""
    caught = []
    monkeypatch.setattr(threading, "excepthook", lambda args: caught.append(args.exc_value))
    return caught


def _dashboard_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, log.DashboardWarning)]


def test_tensorboard_logger_survives_its_folder_removed_mid_run(tmp_path, thread_errors):
    """Bug caught: a run folder removed mid-run crashing training, warning every epoch, or being silently
    re-created."""
    log_dir = tmp_path / "runs" / "mlp"
    tb = log.TensorBoardLogger(log_dir)

    def remove_after_first_epoch(epoch, metrics):
        if epoch == 1:
            shutil.rmtree(log_dir)  # a learner cleaning runs/ while training goes on

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = _fit_with([tb, remove_after_first_epoch], epochs=3)
        tb.log_scalar("grad_norm", 1.0, 10)
        tb.close()
    assert history.epochs == 3
    messages = _dashboard_warnings(caught)
    assert len(messages) == 1 and [str(w.message) for w in caught] == messages
    assert messages[0].startswith(f"TensorBoard cannot write to {log_dir} (FileNotFoundError")
    assert "training goes on" in messages[0] and "\n" not in messages[0]
    assert not tb.enabled and not log_dir.exists()  # not silently re-created
    time.sleep(0.1)  # give any writer thread the time to fail
    assert thread_errors == []


@pytest.mark.parametrize("where", ["under_a_file", "is_a_file"])
def test_tensorboard_logger_on_a_folder_it_cannot_make_warns_once_then_does_nothing(tmp_path, where):
    """Bug caught: a log folder under a file crashing training or overwriting that file."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    log_dir = a_file / "runs" if where == "under_a_file" else a_file
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tb = log.TensorBoardLogger(log_dir)
        history = _fit_with([tb], epochs=2)
        tb.close()
    assert history.epochs == 2
    messages = _dashboard_warnings(caught)
    assert len(messages) == 1 and f"TensorBoard cannot write to {log_dir} (" in messages[0]
    assert not tb.enabled and a_file.read_text() == "not a folder"


def test_tensorboard_logger_on_a_full_or_forbidden_disk_warns_once(tmp_path, monkeypatch):
    """Bug caught: a full disk (ENOSPC) crashing training or warning every epoch; what was written is kept.
    Root may write anywhere, so a chmod cannot make a folder unwritable for the tests: the
    write itself is made to fail, as it does on a full disk or without permission."""
    tb = log.TensorBoardLogger(tmp_path / "run")
    tb(1, EPOCHS[1])

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(log, "open", full_disk, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tb(2, EPOCHS[2])
        tb(3, EPOCHS[3])
        tb.close()
    assert _dashboard_warnings(caught) == [
        f"TensorBoard cannot write to {tmp_path / 'run'} (OSError: No space left on device). TensorBoard "
        "logging is off for this logger; training goes on. To log, create the logger again with a folder "
        "you can write to."]
    monkeypatch.undo()
    assert [s for s, _ in _scalars(tmp_path / "run")["loss/train"]] == [1]  # what was written stays


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write to any folder")
def test_tensorboard_logger_in_a_read_only_folder_warns_once(tmp_path):
    """Bug caught: a read-only log folder raising PermissionError instead of one DashboardWarning."""
    tmp_path.chmod(0o500)
    try:
        with pytest.warns(log.DashboardWarning, match="PermissionError"):
            tb = log.TensorBoardLogger(tmp_path / "run")
        tb(1, EPOCHS[1])
        assert not tb.enabled
    finally:
        tmp_path.chmod(0o700)


def test_tensorboard_logger_defaults_to_the_courses_runs_folder(tmp_path, monkeypatch):
    """Bug caught: the default log folder under the current directory instead of the course's runs/."""
    monkeypatch.setenv("COURSE_RUNS_DIR", str(tmp_path / "runs"))
    with log.TensorBoardLogger() as tb:
        tb(1, EPOCHS[1])
    run = Path(tb.log_dir)
    assert run.parent == tmp_path / "runs" and _scalars(run)["loss/train"] == [(1, 1.5)]


def test_tensorboard_logger_flushes_log_scalar_every_flush_secs(tmp_path):
    """Bug caught: log_scalar writing at every call (flush_secs ignored) or never until close()."""
    tb = log.TensorBoardLogger(tmp_path, flush_secs=3600)
    tb.log_scalar("grad_norm", 1.0, 1)
    assert "grad_norm" not in _scalars(tmp_path)  # kept for the next flush
    tb.flush_secs = 0
    tb.log_scalar("grad_norm", 2.0, 2)
    assert _scalars(tmp_path)["grad_norm"] == [(1, 1.0), (2, 2.0)]
    tb.close()


# --------------------------------------------------------------- visdom without a server
@pytest.fixture
def connections(monkeypatch):
    """Record the timeout of every TCP connection the code under test opens."""
    opened = []
    original = socket.create_connection

    def create_connection(address, timeout=None, *args, **kwargs):
        opened.append(timeout)
        return original(address, timeout, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return opened


def test_visdom_logger_without_server_warns_once_then_does_nothing(run_within, connections):
    """Bug caught: without a server, a warning (or a connection attempt) per call, or an unbounded probe."""
    port = _closed_port()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # A generous ceiling that only catches a hang: the probe's own bound is 1 s.
        logger = run_within(30, lambda: log.VisdomLogger(env="nobody", port=port))
        probes = len(connections)

        def log_a_run():
            for epoch, metrics in EPOCHS.items():
                logger(epoch, metrics)
            for step in range(200):
                logger.log_scalar("grad_norm", 1.0, step)
            logger.close()
        run_within(30, log_a_run)
    assert probes == 1 and connections == [1.0]  # one probe, bounded; then not a single connection
    ours = _dashboard_warnings(caught)
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert len(caught) == 1  # and nothing else (visdom's own noise)
    assert "bash course.sh visdom" in ours[0] and f":{port}" in ours[0]
    assert not logger.enabled


@contextlib.contextmanager
def _stalled_server(accept: bool):
    """A TCP server on 127.0.0.1 that never answers: it only listens (the kernel completes the
    handshake) or also accepts each connection, then holds it open in silence."""
    listener = socket.create_server(("127.0.0.1", 0))
    held, stop = [], threading.Event()

    def accept_and_hold():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_and_hold, daemon=True)
    if accept:
        thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        if accept:
            thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.mark.parametrize("accept", [False, True], ids=["listens", "accepts"])
def test_visdom_logger_gives_up_on_a_server_that_never_answers(run_within, accept, monkeypatch):
    """Bug caught: visdom's requests without a timeout, which hang training on a silent server."""
    # visdom's own client would wait forever here; the logger's timeout must not. Each request
    # gives up after `timeout` seconds (1 s here), which the ceilings below leave room for.
    import requests

    timeouts = []
    original_post = requests.Session.post

    def post(self, url, *args, **kwargs):
        timeouts.append(kwargs.get("timeout"))
        return original_post(self, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "post", post)
    with _stalled_server(accept) as port:
        with pytest.warns(log.DashboardWarning, match="course.sh visdom") as caught:
            logger = run_within(30, lambda: log.VisdomLogger(port=port, timeout=1.0))
        assert len(caught) == 1 and "Timeout" in str(caught[0].message)
        assert timeouts and set(timeouts) == {1.0}  # every request bounded by the logger's timeout
        assert not logger.enabled
        asked = len(timeouts)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            run_within(30, lambda: logger(1, EPOCHS[1]))  # a no-op: no second warning, no request
        assert len(timeouts) == asked


def test_visdom_logger_gives_up_on_a_server_that_is_not_visdom():
    """Bug caught: an HTTP server that is not visdom (HTTP errors) taken for a working dashboard."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.warns(log.DashboardWarning, match="HTTPError"):
            logger = log.VisdomLogger(port=server.server_address[1])
        assert not logger.enabled
    finally:
        server.shutdown()
        server.server_close()


def test_visdom_logger_logs_to_the_courses_environment_by_default():
    """Bug caught: the logger's default env not the one `course.sh visdom` opens."""
    with pytest.warns(log.DashboardWarning):
        logger = log.VisdomLogger(port=_closed_port())
    assert logger.env == "pytorch-course" == config.VISDOM_ENV


def test_tensorboard_points_are_written_when_the_process_ends_without_close(tmp_path):
    """Bug caught: log_scalar points lost when the process (a kernel) ended without close()."""
    script = ("import sys; from helpers import log; tb = log.TensorBoardLogger(sys.argv[1], flush_secs=3600); "
              "[tb.log_scalar('grad_norm', 0.5 * i, i) for i in range(5)]")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")], check=True, timeout=120)
    assert _scalars(tmp_path / "run") == {"grad_norm": [(i, 0.5 * i) for i in range(5)]}


def test_visdom_logger_warns_once_about_plain_http_to_another_machine(monkeypatch):
    """Bug caught: metrics sent in plain HTTP to a remote host without a word."""
    monkeypatch.setattr(log, "_warned_plain_http", set())
    monkeypatch.setattr(log, "_reachable", lambda host, port, timeout: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            log.VisdomLogger(server="http://visdom.example.org")
        log.VisdomLogger(server="http://127.0.0.1")
    plain = [str(w.message) for w in caught if "plain HTTP" in str(w.message)]
    assert len(plain) == 1 and "visdom.example.org" in plain[0] and "SSH tunnel" in plain[0]


# ------------------------------------------------------------------ file writing: slips no test saw
def test_two_loggers_started_in_one_second_write_two_event_files(tmp_path):
    """Bug caught: event file names told apart by time, host and pid only, so two loggers made in
    the same second (a re-run cell) write into one file and TensorBoard mixes the runs."""
    first, second = log.TensorBoardLogger(tmp_path), log.TensorBoardLogger(tmp_path)
    first(1, {"train_loss": 1.0})
    second(1, {"train_loss": 2.0})
    first.close()
    second.close()
    assert first.path != second.path and len(list(tmp_path.iterdir())) == 2


def test_flags_and_text_in_the_metrics_are_not_plotted(tmp_path):
    """Bug caught: a bool metric (a 'stopped' flag) logged as a 0/1 curve, or text breaking the logger."""
    with log.TensorBoardLogger(tmp_path) as tb:
        tb(1, {"epoch": 1, "train_loss": 1.0, "stopped": True, "note": "warm-up"})
    assert set(_scalars(tmp_path)) == {"loss/train"}
