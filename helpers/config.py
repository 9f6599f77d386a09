"""Course-wide settings read from the environment (introduced in lesson 01).

- ``COURSE_QUICK=1`` switches every lesson to quick mode: small data, few epochs, so a
  notebook runs in about a minute on a laptop CPU. CI and the tests set it.
- ``COURSE_DATA_MIRROR`` names a folder holding offline copies of the datasets.
- ``COURSE_DATA_ROOT`` overrides where datasets land (default: ``data/`` in the repo).
"""
import os
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}


def is_quick() -> bool:
    """True when COURSE_QUICK asks for quick mode."""
    return os.environ.get("COURSE_QUICK", "").strip().lower() in _TRUE


def by_mode(full, quick):
    """Return ``quick`` in quick mode and ``full`` otherwise: ``epochs = by_mode(20, 2)``."""
    return quick if is_quick() else full


def project_root() -> Path | None:
    """The repository checkout holding this package, or None when installed elsewhere."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "notebooks").is_dir() else None


def data_root() -> Path:
    """Where datasets land: COURSE_DATA_ROOT, else the repo's data/, else ./data."""
    if os.environ.get("COURSE_DATA_ROOT"):
        return Path(os.environ["COURSE_DATA_ROOT"]).expanduser()
    root = project_root()
    return (root / "data") if root else Path.cwd() / "data"


def data_mirror() -> Path | None:
    """The offline mirror named by COURSE_DATA_MIRROR, or None when unset."""
    value = os.environ.get("COURSE_DATA_MIRROR", "").strip()
    return Path(value).expanduser().resolve() if value else None
