"""`bash course.sh data` (tools/get_data.py): every dataset fetched up front, as the lessons fetch them."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import get_data  # noqa: E402


def test_get_data_fetches_what_it_is_asked_for_into_the_data_root(mirror, tmp_path, monkeypatch, capsys):
    """Bug caught: `bash course.sh data` saying a dataset is ready that the lessons would still have to fetch."""
    monkeypatch.setenv("COURSE_DATA_ROOT", str(tmp_path))
    assert get_data.main(["MNIST"]) == 0
    out = capsys.readouterr().out
    assert "MNIST: getting it (about 12 MB when downloaded) ..." in out and "every dataset is ready" in out
    assert sorted(p.name for p in (tmp_path / "MNIST" / "raw").iterdir() if not p.name.endswith(".gz")) == sorted(
        ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"])


def test_get_data_says_what_failed_and_why(tmp_path, monkeypatch, capsys):
    """Bug caught: a dataset that cannot be had (offline, no mirror) reported as ready, or a crash."""
    monkeypatch.setenv("COURSE_DATA_ROOT", str(tmp_path))
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    import helpers.data

    def offline(*args, **kwargs):
        raise helpers.data.DatasetNotFoundError("ants/bees: not here, no mirror, no network")

    monkeypatch.setattr(helpers.data, "hymenoptera", offline)
    assert get_data.main(["ants/bees"]) == 1
    out = capsys.readouterr().out
    assert "ants/bees: FAILED\nants/bees: not here, no mirror, no network" in out and "not ready: ants/bees" in out


def test_get_data_refuses_an_unknown_name():
    """Bug caught: a typo in a dataset's name silently fetching nothing."""
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "get_data.py"), "CIFAR10"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and "unknown dataset CIFAR10: choose from MNIST, FashionMNIST, CIFAR-10" in run.stderr
