"""helpers.log without a visdom server: TensorBoard round trips, and a visdom logger that gives up.

Tests against a real visdom server (and one that dies mid-run) are in test_visdom_server.py.
"""
import http.server
import socket
import threading
import time
import warnings

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from helpers import data, log, train

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
    tb = log.TensorBoardLogger(str(tmp_path), flush_secs=3600)
    tb(1, EPOCHS[1])
    assert _scalars(tmp_path)["loss/val"] == [(1, pytest.approx(1.7))]  # before close()
    tb.close()


def test_tensorboard_logger_is_a_fit_callback(tmp_path):
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


def test_visdom_logger_without_server_warns_once_fast_then_does_nothing():
    port = _closed_port()
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = log.VisdomLogger(env="nobody", port=port)
        built = time.perf_counter() - start
        for epoch, metrics in EPOCHS.items():
            logger(epoch, metrics)
        for step in range(200):
            logger.log_scalar("grad_norm", 1.0, step)
        logger.close()
    total = time.perf_counter() - start
    assert built < 2.0, f"VisdomLogger took {built:.2f}s to notice there is no server"
    assert total - built < 0.5, f"calls on a disabled logger took {total - built:.2f}s"
    ours = [w for w in caught if issubclass(w.category, log.DashboardWarning)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert [w for w in caught if w not in ours] == []  # and nothing else (visdom's own noise)
    message = str(ours[0].message)
    assert "bash course.sh visdom" in message and f":{port}" in message
    assert not logger.enabled


def test_visdom_logger_gives_up_on_a_server_that_accepts_but_never_answers(run_within):
    # A socket that listens but never accepts: the kernel completes the TCP handshake, then
    # nothing. visdom's own client would wait forever here; the logger's timeout must not.
    with socket.socket() as stalled:
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(8)
        start = time.perf_counter()
        with pytest.warns(log.DashboardWarning, match="course.sh visdom") as caught:
            logger = run_within(10, lambda: log.VisdomLogger(port=stalled.getsockname()[1], timeout=1.0))
        assert time.perf_counter() - start < 2.5
        assert len(caught) == 1 and "Timeout" in str(caught[0].message)
        assert not logger.enabled
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            run_within(10, lambda: logger(1, EPOCHS[1]))  # a no-op: no second warning, no wait
        assert time.perf_counter() - start < 2.5


def test_visdom_logger_gives_up_on_a_server_that_is_not_visdom():
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
