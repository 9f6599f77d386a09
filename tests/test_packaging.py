"""What `pip install` of the course (Colab's install cell) puts on a learner's machine."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_helpers_package_is_installed():
    """Bug caught: `packages = ["helpers"]` left helpers.exercises out of the wheel, so every
    lesson's set-up cell failed in Colab (`from helpers.exercises import lessonNN`)."""
    line = re.search(r"^packages = \[(.*)\]$", (ROOT / "pyproject.toml").read_text(), re.M)  # Python 3.10: no tomllib
    declared = set(re.findall(r'"([\w.]+)"', line.group(1)))
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "helpers").rglob("__init__.py")}
    assert found <= declared, f"add {sorted(found - declared)} to [tool.setuptools] packages in pyproject.toml"
