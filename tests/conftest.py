"""Shared test settings: quick mode, a headless matplotlib, and small fixtures."""
import os

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
