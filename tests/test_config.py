from pathlib import Path

import pytest

from helpers import config


@pytest.mark.parametrize("value, quick", [("1", True), ("true", True), ("YES", True), (" on\n", True),
                                          ("0", False), ("", False), ("no", False), ("Off", False),
                                          ("FALSE", False), ("  ", False)])
def test_quick_mode_follows_the_environment(monkeypatch, value, quick):
    monkeypatch.setenv("COURSE_QUICK", value)
    assert config.is_quick() is quick
    assert config.by_mode(full=10, quick=1) == (1 if quick else 10)


def test_quick_mode_is_off_when_unset(monkeypatch):
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    assert not config.is_quick()


@pytest.mark.parametrize("value", ["2", "Y", "enabled", "quick", "-1"])
def test_an_unknown_quick_value_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("COURSE_QUICK", value)
    with pytest.raises(ValueError) as error:
        config.by_mode(full=10, quick=1)
    assert str(error.value) == (f"COURSE_QUICK={value!r} is not understood: use 1, true, yes, on for quick "
                                "mode, or 0, false, no, off (or leave it unset) for full mode")


def test_data_root_defaults_to_the_repos_data_folder(monkeypatch):
    monkeypatch.delenv("COURSE_DATA_ROOT", raising=False)
    assert config.project_root() == Path(__file__).resolve().parent.parent
    assert config.data_root() == config.project_root() / "data"


def test_data_root_and_mirror_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_ROOT", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    assert config.data_root() == tmp_path / "elsewhere"
    assert config.data_mirror() == (tmp_path / "mirror").resolve()
    monkeypatch.setenv("COURSE_DATA_MIRROR", "  ")
    assert config.data_mirror() is None


def test_runs_live_in_one_folder_at_the_repos_root(monkeypatch, tmp_path):
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
