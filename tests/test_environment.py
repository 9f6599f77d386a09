"""The project's set-up files agree with each other."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _requirements(path):
    specs = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", line).groups()
            specs[name.lower()] = spec.replace(" ", "")
    return specs


def test_environment_yml_has_the_same_packages_and_versions_as_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "pytorch-course"
    conda, pip = {}, {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip.update(_parse(line) for line in dep["pip"])
        else:
            conda.update([_parse(dep)])
    assert conda.pop("python") == "=3.11" and "pip" in conda
    assert conda.pop("setuptools") == "<81"  # visdom's build needs pkg_resources
    conda.pop("pip")
    assert not set(conda) & set(pip)
    assert {**conda, **pip} == _requirements(ROOT / "requirements.txt")


def _parse(entry):
    name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", entry).groups()
    return name.lower(), spec.replace(" ", "")


def test_constraints_hold_the_visdom_recipe():
    constraints = _requirements(ROOT / "constraints.txt")
    assert constraints == {"setuptools": "<81", "tornado": "<6.6"}
    course = (ROOT / "course.sh").read_text()
    assert 'PIP_CONSTRAINT="$ROOT/constraints.txt" PIP_BUILD_CONSTRAINT="$ROOT/constraints.txt"' in course


def test_readme_commands_are_the_ones_ci_and_the_script_use():
    readme = (ROOT / "README.md").read_text()
    assert "bash course.sh lab" in readme and "bash course.sh test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == "bash course.sh test"
    course = (ROOT / "course.sh").read_text()
    assert "    lab)" in course and "    test)" in course


def test_readme_links_every_notebook_with_a_colab_badge():
    readme = (ROOT / "README.md").read_text()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{nb.name}" in readme
        assert f"colab.research.google.com/github/open-pytorch-course/pytorch-course/blob/main/notebooks/{nb.name}" in readme
