"""The project's set-up files agree with each other."""
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml
from packaging.version import Version

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
    """Bug caught: environment.yml and requirements.txt drifting apart (a package or pin in one only)."""
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
    """Bug caught: the setuptools/tornado pins that visdom's build needs lost from constraints.txt or
    course.sh."""
    constraints = _requirements(ROOT / "constraints.txt")
    assert constraints == {"setuptools": "<81", "tornado": "<6.6"}
    course = (ROOT / "course.sh").read_text()
    assert 'PIP_CONSTRAINT="$ROOT/constraints.txt" PIP_BUILD_CONSTRAINT="$ROOT/constraints.txt"' in course


def test_readme_commands_are_the_ones_ci_and_the_script_use():
    """Bug caught: the README naming commands that CI and course.sh do not run."""
    readme = (ROOT / "README.md").read_text()
    assert "bash course.sh lab" in readme and "bash course.sh test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    # the README's test command first, then the website, then the oldest torch
    steps = [line for line in ci.splitlines() if line.startswith("bash course.sh")]
    assert steps == ["bash course.sh test", "bash course.sh site", "bash course.sh floor"]
    assert ci.strip().splitlines()[-1] == "bash course.sh floor"
    assert "bash course.sh site" in readme
    course = (ROOT / "course.sh").read_text()
    assert all(f"    {command})" in course for command in ("lab", "test", "floor", "site"))


def test_readme_links_every_notebook_with_a_colab_badge():
    """Bug caught: a lesson missing from the README or without its Colab badge."""
    readme = (ROOT / "README.md").read_text()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{nb.name}" in readme
        assert f"colab.research.google.com/github/open-pytorch-course/pytorch-course/blob/main/notebooks/{nb.name}" in readme


def test_the_version_floor_is_the_same_in_pyproject_requirements_floor_and_readme():
    """Bug caught: the oldest supported torch stated differently in pyproject, requirements-floor and the
    README."""
    floor = _requirements(ROOT / "requirements-floor.txt")
    assert set(floor) == {"torch", "torchvision"}
    pyproject = (ROOT / "pyproject.toml").read_text()
    readme = (ROOT / "site" / "setup.md").read_text()  # the README links it: "Setting up", Supported versions
    pinned = _requirements(ROOT / "requirements.txt")
    for name, spec in floor.items():
        oldest = spec.removeprefix("==")
        assert spec == f"=={oldest}"
        assert f'"{name}>={oldest.removesuffix(".0")}"' in pyproject, f"pyproject.toml must declare {name}>={oldest}"
        assert f"{name} {oldest}" in readme, f"site/setup.md must name the floor, {name} {oldest}"
        assert Version(pinned[name].removeprefix("==")) >= Version(oldest)  # not by splitting strings


def test_floor_check_names_the_first_raising_cell_and_allows_tagged_ones(tmp_path):
    """Bug caught: the floor check passing a notebook that raises, or failing a raises-exception cell."""
    broken = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# a lesson"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("\ny = x / 0  # the pitfall, unguarded"),
        nbformat.v4.new_code_cell("print(y)"),
    ])
    fine = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("raise KeyError('shown on purpose')", metadata={"tags": ["raises-exception"]}),
        nbformat.v4.new_code_cell("print('done')"),
    ])
    nbformat.write(broken, tmp_path / "broken.ipynb")
    nbformat.write(fine, tmp_path / "fine.ipynb")
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "floor_check.py"),
                          str(tmp_path / "fine.ipynb"), str(tmp_path / "broken.ipynb")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "fine.ipynb: OK" in run.stdout
    assert "broken.ipynb: FAILED" in run.stdout
    assert "Cell 2: y = x / 0  # the pitfall, unguarded" in run.stdout
    assert "ZeroDivisionError: division by zero" in run.stdout
    assert run.stdout.strip().splitlines()[-1] == "notebooks: 1 passed, 1 failed"
