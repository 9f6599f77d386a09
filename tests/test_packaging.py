"""What `pip install` of the course (Colab's install cell) puts on a learner's machine."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_helpers_package_is_installed():
    """Bug caught: `packages = ["helpers"]` left helpers.exercises out of the wheel, so every
    lesson's set-up cell failed in Colab (`from helpers.exercises import lessonNN`)."""
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "helpers").rglob("__init__.py")}
    assert found <= declared, f"add {sorted(found - declared)} to [tool.setuptools] packages in pyproject.toml"
