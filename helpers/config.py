"""Course-wide settings read from the environment (introduced in lesson 01).

- ``COURSE_QUICK=1`` switches every lesson to quick mode: small data, few epochs, so a
  notebook runs in about a minute on a laptop CPU. CI and the tests set it. Accepted values:
  1, true, yes, on (quick) and 0, false, no, off or empty (full), in any case; anything else
  is an error.
- ``COURSE_DATA_MIRROR`` names a folder holding offline copies of the datasets.
- ``COURSE_DATA_ROOT`` overrides where datasets land (default: ``data/`` in the repo).
- ``COURSE_RUNS_DIR`` overrides where dashboards keep their runs (default: ``runs/`` in the repo).
- ``COURSE_CHECKPOINTS_DIR`` overrides where lessons save checkpoints (default: ``checkpoints/``
  in the repo).
"""
import glob
import os
from pathlib import Path

QUICK_VALUES = ("1", "true", "yes", "on")
FULL_VALUES = ("0", "false", "no", "off", "")
# The visdom environment the course logs to, and the one `bash course.sh visdom` opens.
VISDOM_ENV = "pytorch-course"


def is_quick() -> bool:
    """True when COURSE_QUICK asks for quick mode; a value it does not know is a ValueError."""
    raw = os.environ.get("COURSE_QUICK", "")
    value = raw.strip().lower()
    if value in QUICK_VALUES:
        return True
    if value in FULL_VALUES:
        return False
    raise ValueError(f"COURSE_QUICK={raw!r} is not understood: use {', '.join(QUICK_VALUES)} for quick "
                     f"mode, or {', '.join(FULL_VALUES[:-1])} (or leave it unset) for full mode")


def by_mode(full, quick):
    """Return ``quick`` in quick mode and ``full`` otherwise: ``epochs = by_mode(20, 2)``."""
    return quick if is_quick() else full


def project_root() -> Path | None:
    """The repository checkout holding this package, or None when installed elsewhere."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "notebooks").is_dir() else None


def _course_folder(variable: str, name: str) -> Path:
    """``$variable`` if set, else ``name/`` in the repository checkout, else ``./name``."""
    value = os.environ.get(variable, "").strip()
    if value:
        return Path(value).expanduser()
    root = project_root()
    return (root / name) if root else Path.cwd() / name


def data_root() -> Path:
    """Where datasets land: COURSE_DATA_ROOT, else the repo's data/, else ./data."""
    return _course_folder("COURSE_DATA_ROOT", "data")


def runs_dir() -> Path:
    """Where the dashboards keep their runs, one place for every lesson (lesson 04):
    COURSE_RUNS_DIR, else the repo's runs/ (ignored by git), else ./runs. TensorBoard logs go
    to ``runs/<name>``, visdom's saved environments to ``runs/visdom/``; view them with
    ``tensorboard --logdir runs`` from the repository's root."""
    return _course_folder("COURSE_RUNS_DIR", "runs")


def checkpoints_dir() -> Path:
    """Where the lessons save their checkpoints (lessons 04 and 07): COURSE_CHECKPOINTS_DIR, else
    the repo's checkpoints/ (ignored by git), else ./checkpoints. Each learner's own, even when
    several share one COURSE_DATA_ROOT."""
    return _course_folder("COURSE_CHECKPOINTS_DIR", "checkpoints")


def remove_stale_temporaries(folder: Path, name: str, suffix: str) -> None:
    """Remove the files ``.{name}.{pid}{suffix}`` in ``folder`` that processes which no longer
    exist left behind (a killed save or copy never runs its clean-up)."""
    for tmp in Path(folder).glob(f".{glob.escape(name)}.*{suffix}"):
        pid = tmp.name[len(name) + 2:-len(suffix)]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_exists(int(pid)):
            tmp.unlink(missing_ok=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, or a platform that cannot tell: leave its file alone
        return True
    return True


def data_mirror() -> Path | None:
    """The offline mirror named by COURSE_DATA_MIRROR, or None when unset."""
    value = os.environ.get("COURSE_DATA_MIRROR", "").strip()
    return Path(value).expanduser().resolve() if value else None
