"""Shared test settings: quick mode, a headless matplotlib, and small fixtures."""
import os
import threading

import matplotlib
import pytest
import torch

os.environ.setdefault("COURSE_QUICK", "1")
matplotlib.use("agg")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def empty_data_root(tmp_path, monkeypatch):
    """A data root with nothing in it and no mirror: the 'dataset missing' situation."""
    monkeypatch.setenv("COURSE_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    return tmp_path / "data"


@pytest.fixture
def mirror():
    """The offline mirror the tests read real data from (CI: ../shared/data)."""
    from helpers.config import data_mirror

    path = data_mirror()
    assert path is not None and path.is_dir(), (
        "set COURSE_DATA_MIRROR to a folder with the course's datasets (CI uses ../shared/data)")
    return path


def _run_within(seconds: float, fn):
    """Run ``fn()`` in a thread; fail (instead of hanging the suite) if it takes longer."""
    result, error = [], []

    def target():
        try:
            result.append(fn())
        except BaseException as exc:  # handed back to the test below
            error.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds}s: the code under test hangs"
    if error:
        raise error[0]
    return result[0]


@pytest.fixture
def run_within():
    """``run_within(seconds, fn)``: call ``fn`` and fail if it blocks longer than ``seconds``."""
    return _run_within
