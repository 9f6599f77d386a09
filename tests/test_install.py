"""Installing the course must not break the learner's environment, and opening a lesson must not change it.

- Colab: each lesson's first cell runs `pip install git+<this repository>` into an environment that
  already has its own (newer) torch, torchvision and numpy. pip's dry-run report on a fresh venv that
  holds such versions (tiny fake distributions) shows what that install would change: only the
  course's own package may appear in it.
- JupyterLab: opening a lesson writes the running kernel's name into the notebook's metadata, and
  saving writes the notebook back with nbformat. With the kernel course.sh registers, that round
  trip must give back every committed lesson byte for byte (else git sees every opened lesson as
  changed, and `git pull` refuses to merge).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import js_numbers  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PROJECT = "pytorch-course-helpers"


def fake_wheel(folder: Path, name: str, version: str) -> Path:
    """A tiny installable wheel: the package ``name`` with nothing in it but its version."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist_info}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{dist_info}/RECORD,,\n"
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name_in_zip, text in files.items():
            wheel.writestr(name_in_zip, text)
    return path


def pip(*args, timeout=300):
    """This environment's pip (run it on another venv with --python), blind to the machine's pip
    configuration (an index, find-links or constraints set there would change what it resolves)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # no configuration file at all, the machine's global one included
    run = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                         capture_output=True, text=True, timeout=timeout, env=env)
    return run


@pytest.fixture(scope="module")
def course_wheel(tmp_path_factory):
    """The course's own wheel, built from this checkout's files as pip builds it from a git clone
    (in a copy, so that the build writes nothing into the checkout), with this environment's
    setuptools: offline, no isolated build environment to download."""
    from importlib.metadata import version

    from packaging.requirements import Requirement

    build = Requirement(re.search(r'requires = \["([^"]+)"\]', (ROOT / "pyproject.toml").read_text())[1])
    if not build.specifier.contains(version("setuptools")):
        pytest.skip(f"this environment's setuptools {version('setuptools')} cannot build the course ({build}); "
                    "the course's .venv, whose torch requires a newer one, runs this test")
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "helpers", source / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    run = pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out), str(source))
    assert run.returncode == 0, run.stdout + run.stderr
    return next(out.glob("*.whl"))


def dry_run(tmp_path, course_wheel, installed: dict[str, str], offered: dict[str, str] | None = None) -> dict:
    """pip's report of `pip install <the course>` into a fresh venv holding ``installed``
    {name: version}, offline, with ``offered`` versions available to upgrade to."""
    venv, have, offer = tmp_path / "venv", tmp_path / "have", tmp_path / "offer"
    have.mkdir()
    offer.mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    wheels = [str(fake_wheel(have, name, version)) for name, version in installed.items()]
    run = pip("--python", python, "install", "--no-index", "--no-deps", *wheels)
    assert run.returncode == 0, run.stdout + run.stderr
    for name, version in (offered or {}).items():
        fake_wheel(offer, name, version)
    report = tmp_path / "report.json"
    run = pip("--python", python, "install", "--dry-run", "--report", str(report), "--no-index",
              "--find-links", str(offer), str(course_wheel))
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(report.read_text())


def would_install(report: dict) -> dict[str, str]:
    return {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in report["install"]}


def _floor():
    text = (ROOT / "requirements-floor.txt").read_text()
    return {name: re.search(rf"^{name}==(\S+)", text, re.M)[1] for name in ("torch", "torchvision")}


@pytest.mark.parametrize("where", ["Colab's newer torch", "the oldest supported torch"])
def test_installing_the_course_changes_no_torch_torchvision_or_numpy(tmp_path, course_wheel, where):
    """Bug caught: the Colab install cell downgrading (or upgrading) the torch, torchvision or numpy
    the learner's environment already has, e.g. through an upper bound or a pin in pyproject.toml."""
    if where == "Colab's newer torch":
        installed = {"torch": "2.99.0+cu126", "torchvision": "0.99.0+cu126", "numpy": "2.99.0"}
    else:
        installed = {**_floor(), "numpy": "1.26.4"}
    installed |= {"matplotlib": "3.99.0", "tqdm": "4.99.0"}
    # pip may pick from these; none of them is needed, so none may be picked
    offered = {"torch": "2.14.1", "torchvision": "0.29.1", "numpy": "2.4.6"}
    report = dry_run(tmp_path, course_wheel, installed, offered)
    assert would_install(report) == {PROJECT: "0.1.0"}, "only the course's helpers may be installed"


def test_a_torch_below_the_floor_is_upgraded(tmp_path, course_wheel):
    """Bug caught: the floor in pyproject.toml lost, so that the helpers install beside a torch too old
    for them (torch.load's weights_only default, lesson 04). Also shows that the check above can fail."""
    floor = _floor()
    report = dry_run(tmp_path, course_wheel, {"torch": "2.5.1", "torchvision": "0.20.1", "numpy": "2.0.0",
                                              "matplotlib": "3.9.0", "tqdm": "4.66.0"}, offered=floor)
    assert would_install(report) == {PROJECT: "0.1.0", **floor}


def test_pyproject_bounds_torch_from_below_only():
    """Bug caught: an upper bound or a pin on torch, torchvision or numpy in the package's
    dependencies (what the Colab install resolves), which would move Colab's versions."""
    text = (ROOT / "pyproject.toml").read_text()
    dependencies = re.search(r"^dependencies = \[(.*?)^\]", text, re.M | re.S)[1]
    for name in ("torch", "torchvision", "numpy"):
        spec = re.search(rf'"{name}([^"]*)"', dependencies)[1]
        assert not re.search(r"<|==|~=|!=", spec), f"{name}{spec}: only a floor (>=) may bound it"


# ------------------------------------------------------------------------------ the kernel
def registered_kernel() -> dict:
    """The kernelspec JupyterLab writes into a notebook that runs course.sh's kernel."""
    text = (ROOT / "course.sh").read_text()
    return {"name": re.search(r'^KERNEL_NAME="([^"]+)"', text, re.M)[1],
            "display_name": re.search(r'^KERNEL_DISPLAY_NAME="([^"]+)"', text, re.M)[1],
            "language": "python"}  # ipykernel's kernel.json


def test_course_sh_registers_the_kernel_the_lessons_name():
    """Bug caught: course.sh registering "Python 3 (PyTorch course)" while the lessons say "Python 3
    (ipykernel)": JupyterLab then rewrites the metadata of every lesson opened."""
    kernel = registered_kernel()
    assert '--name "$KERNEL_NAME" --display-name "$2"' in (ROOT / "course.sh").read_text()
    for path in NOTEBOOKS:
        assert nbformat.read(path, as_version=4).metadata.kernelspec == kernel, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_opening_and_saving_a_lesson_leaves_it_byte_identical(tmp_path, path):
    """Bug caught: a lesson that changes on disk when JupyterLab merely opens and saves it (another
    kernel name in its metadata; a widget state's 5.0, which JupyterLab writes back as 5), so that
    git status shows it modified and `git pull` refuses to merge."""
    from ipykernel.ipkernel import IPythonKernel

    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = registered_kernel()  # what JupyterLab sets when the kernel starts
    # ... and the kernel's language_info; its "version" is the Python's own, which only a kernel of
    # the same Python version (the one the lessons were saved with) leaves unchanged
    info = {**IPythonKernel.language_info, "version": nb.metadata.get("language_info", {}).get("version")}
    nb.metadata["language_info"] = info
    # JupyterLab holds the notebook as JavaScript (one kind of number: the widget state's 5.0 comes
    # back as 5), then jupyter_server writes it with nbformat
    saved = tmp_path / path.name
    nbformat.write(js_numbers(nb), saved)
    assert saved.read_bytes() == path.read_bytes(), (
        f"{path.name} changes when JupyterLab saves it: run it with tools/run_notebooks.py, which saves numbers "
        "as JupyterLab does")
