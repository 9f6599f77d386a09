from pathlib import Path

import pytest

from helpers import config


@pytest.mark.parametrize("value, quick", [("1", True), ("true", True), ("YES", True), ("0", False),
                                          ("", False), ("no", False)])
def test_quick_mode_follows_the_environment(monkeypatch, value, quick):
    monkeypatch.setenv("COURSE_QUICK", value)
    assert config.is_quick() is quick
    assert config.by_mode(full=10, quick=1) == (1 if quick else 10)


def test_quick_mode_is_off_when_unset(monkeypatch):
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    assert not config.is_quick()


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
