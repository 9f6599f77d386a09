from pathlib import Path

import pytest

from helpers import config


@pytest.mark.parametrize("value, quick", [("1", True), ("true", True), ("YES", True), (" on\n", True),
                                          ("0", False), ("", False), ("no", False), ("Off", False),
                                          ("FALSE", False), ("  ", False)])
def test_quick_mode_follows_the_environment(monkeypatch, value, quick):
    """Bug caught: a COURSE_QUICK spelling (YES, Off, ' on\n', blank) read the wrong way, or by_mode's
    arguments swapped."""
    monkeypatch.setenv("COURSE_QUICK", value)
    assert config.is_quick() is quick
    assert config.by_mode(full=10, quick=1) == (1 if quick else 10)


def test_quick_mode_is_off_when_unset(monkeypatch):
    """Bug caught: quick mode on by default, so a learner's full run silently trains on a tenth of the
    data."""
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    assert not config.is_quick()


@pytest.mark.parametrize("value", ["2", "Y", "enabled", "quick", "-1"])
def test_an_unknown_quick_value_is_a_clear_error(monkeypatch, value):
    """Bug caught: an unknown COURSE_QUICK value (2, Y, quick) silently taken as quick or full mode."""
    monkeypatch.setenv("COURSE_QUICK", value)
    with pytest.raises(ValueError) as error:
        config.by_mode(full=10, quick=1)
    assert str(error.value) == (f"COURSE_QUICK={value!r} is not understood: use 1, true, yes, on for quick "
                                "mode, or 0, false, no, off (or leave it unset) for full mode")


def test_data_root_defaults_to_the_repos_data_folder(monkeypatch):
    """Bug caught: datasets landing beside the notebook (notebooks/data) instead of the repository's data/."""
    monkeypatch.delenv("COURSE_DATA_ROOT", raising=False)
    assert config.project_root() == Path(__file__).resolve().parent.parent
    assert config.data_root() == config.project_root() / "data"


def test_data_root_and_mirror_can_be_overridden(monkeypatch, tmp_path):
    """Bug caught: COURSE_DATA_ROOT or COURSE_DATA_MIRROR ignored, or a blank mirror variable taken as the
    current folder."""
    monkeypatch.setenv("COURSE_DATA_ROOT", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    assert config.data_root() == tmp_path / "elsewhere"
    assert config.data_mirror() == (tmp_path / "mirror").resolve()
    monkeypatch.setenv("COURSE_DATA_MIRROR", "  ")
    assert config.data_mirror() is None


def test_runs_live_in_one_folder_at_the_repos_root(monkeypatch, tmp_path):
    """Bug caught: dashboards writing runs/ wherever the notebook runs, a runs/ folder git would track, or
    COURSE_RUNS_DIR ignored."""
    monkeypatch.delenv("COURSE_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # wherever the notebook runs from (lessons run in notebooks/)
    assert config.runs_dir() == config.project_root() / "runs"
    gitignore = (config.project_root() / ".gitignore").read_text().splitlines()
    assert "runs/" in gitignore or "/runs/" in gitignore
    monkeypatch.setenv("COURSE_RUNS_DIR", str(tmp_path / "my-runs"))
    assert config.runs_dir() == tmp_path / "my-runs"
    monkeypatch.setenv("COURSE_RUNS_DIR", " ")
    monkeypatch.setattr(config, "project_root", lambda: None)  # installed with pip, not a checkout
    assert config.runs_dir() == tmp_path / "runs"
    assert config.data_root() == tmp_path / "data"


# ------------------------------------------------------------- folders and stale temporaries
def test_checkpoints_have_their_own_variable_and_folder(monkeypatch, tmp_path):
    """Bug caught: checkpoints_dir reading the wrong variable (COURSE_CHECKPOINT_DIR) or folder name,
    so lessons save where the learner did not ask, or into a folder git tracks."""
    monkeypatch.delenv("COURSE_CHECKPOINTS_DIR", raising=False)
    assert config.checkpoints_dir() == config.project_root() / "checkpoints"
    gitignore = (config.project_root() / ".gitignore").read_text().splitlines()
    assert "checkpoints/" in gitignore or "/checkpoints/" in gitignore
    monkeypatch.setenv("COURSE_CHECKPOINTS_DIR", f" {tmp_path / 'mine'} ")
    assert config.checkpoints_dir() == tmp_path / "mine"


@pytest.mark.parametrize("variable, folder", [("COURSE_DATA_ROOT", config.data_root),
                                              ("COURSE_RUNS_DIR", config.runs_dir),
                                              ("COURSE_CHECKPOINTS_DIR", config.checkpoints_dir)])
def test_a_folder_given_with_a_tilde_is_the_home_folder(monkeypatch, tmp_path, variable, folder):
    """Bug caught: ~ not expanded, so `export COURSE_DATA_ROOT=~/data` made a folder named '~'."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(variable, "~/course")
    assert folder() == tmp_path / "course"


def _dead_pid() -> int:
    """The id of a process that has just ended."""
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def test_remove_stale_temporaries_removes_only_those_of_dead_processes(tmp_path):
    """Bug caught: the pid read off by one character from the name (nothing ever removed), a live
    process's (or this one's) file removed mid-write, or another file's temporaries touched."""
    import os

    dead = _dead_pid()
    name = "m[1].pt"  # glob's special characters in the name are matched literally
    stale = tmp_path / f".{name}.{dead}.tmp"
    keep = [tmp_path / f".{name}.{os.getpid()}.tmp",    # this process: maybe saving right now
            tmp_path / f".{name}.{os.getppid()}.tmp",   # a process that exists
            tmp_path / f".other.pt.{dead}.tmp",         # another file's
            tmp_path / f".{name}.backup.tmp",           # not a pid
            tmp_path / f".{name}.{dead}.part"]          # another suffix
    for path in [stale, *keep]:
        path.write_bytes(b"x")
    config.remove_stale_temporaries(tmp_path, name, ".tmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in keep)


def test_a_temporary_of_a_process_that_cannot_be_signalled_is_kept(tmp_path, monkeypatch):
    """Bug caught: another user's process (os.kill raises PermissionError) taken for a dead one,
    so its file is removed while it writes."""
    import os

    def kill(pid, signal):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", kill)
    mine = tmp_path / ".m.pt.999999.tmp"
    mine.write_bytes(b"x")
    config.remove_stale_temporaries(tmp_path, "m.pt", ".tmp")
    assert mine.exists()


def test_an_installed_package_has_no_project_root(monkeypatch, tmp_path):
    """Bug caught: any parent folder of helpers/ taken for the checkout (site-packages, once
    installed with pip), so data/ and runs/ land inside the Python installation."""
    installed = tmp_path / "site-packages" / "helpers" / "config.py"
    installed.parent.mkdir(parents=True)
    monkeypatch.setattr(config, "__file__", str(installed))
    assert config.project_root() is None
    monkeypatch.delenv("COURSE_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert config.runs_dir() == tmp_path / "runs"
