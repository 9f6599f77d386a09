"""`bash course.sh doctor` (helpers/doctor.py): each diagnosis from faked facts, the facts gathered
from faked folders, and one real run on this checkout.

diagnose() sees nothing but its facts, so every test starts from a healthy set-up and breaks one thing:
exactly one ✗ line must appear, naming the problem and its fix, and nothing else may change.
"""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import doctor
from helpers.doctor import NOTE, OK, PROBLEM, dataset_places, diagnose, floors, stamp_is_current

ROOT = Path(__file__).resolve().parent.parent

HEALTHY = {
    "checkout": True, "system": "Linux", "machine": "x86_64", "venv": True, "stamp_current": True,
    "venv_python": "/course/.venv/bin/python", "course_kernel": "Python 3 (ipykernel)",
    "notebook_kernels": ["Python 3 (ipykernel)"], "notebook_pythons": ["3.11.7"], "notebooks_changed": [],
    "driver": "550.54", "course_device": None,
    "data_root": "/course/data", "data_writable": True, "mirror": None, "mirror_exists": False,
    "datasets": {"MNIST": "data/", "FashionMNIST": "data/", "CIFAR-10": "data/", "ants/bees": "data/"},
    "free_data": 50e9, "free_root": 50e9, "cjk_font": True, "visdom_server": False,
    "probe": {
        "python": "3.11.7", "executable": "/course/.venv/bin/python", "prefix": "/course/.venv",
        "torch_version": "2.14.1", "torchvision_version": "0.29.1", "tensorboard_version": "2.21.0",
        "visdom_version": "0.2.4", "ipykernel_version": "7.1.0", "jupyterlab_version": "4.6.6",
        "packaging_version": "26.0", "below_floor": {}, "above_pin": {},
        "floors": {"torch": "2.6.0", "torchvision": "0.21.0"}, "pins": {"torch": "2.14.1", "torchvision": "0.29.1"},
        "torch_error": None, "cuda_build": "13.0", "cuda": True, "cuda_name": "NVIDIA H100 80GB HBM3",
        "cuda_reason": None, "mps": False,
        "kernel": {"argv0": "/course/.venv/bin/python", "display_name": "Python 3 (ipykernel)",
                   "dir": "/course/.venv/share/jupyter/kernels/python3"},
    },
}


def facts_with(**changes):
    """HEALTHY with ``changes``: top-level keys, or ``probe__key`` for the probe's."""
    facts = copy.deepcopy(HEALTHY)
    for key, value in changes.items():
        if key.startswith("probe__"):
            facts["probe"][key.removeprefix("probe__")] = value
        else:
            facts[key] = value
    return facts


def problems(facts):
    return [f.line() for f in diagnose(facts) if f.level == PROBLEM]


def test_a_healthy_set_up_has_no_problem_and_says_what_it_checked():
    """Bug caught: the doctor inventing problems, or leaving a topic of the issue unchecked."""
    findings = diagnose(HEALTHY)
    assert [f.level for f in findings if f.level != OK] == []
    topics = [f.topic for f in findings]
    assert topics == ["Python", "set-up", "kernel", "torch", "torchvision", "device", "data", "disk",
                      "dashboards", "font", "notebooks"]
    assert "the lessons will use CUDA: NVIDIA H100 80GB HBM3" in [f.text for f in findings]
    assert all("\n" not in f.line() for f in findings), "one line per finding"


# Each case: the broken facts, then words the one ✗ line must hold (the problem, then its fix).
CASES = {
    "old Python": (dict(probe__python="3.9.18"),
                   ["3.9.18 (.venv) is too old: the course needs 3.10 or newer", "PYTHON=python3.11 bash course.sh setup"]),
    "no venv": (dict(venv=False), [".venv/ does not exist yet", "→ bash course.sh setup"]),
    "stale venv": (dict(stamp_current=False), ["older requirements", "→ bash course.sh setup"]),
    "no kernel": (dict(probe__kernel=None), ["no python3 kernel is registered",
                                             '--name python3 --display-name "Python 3 (ipykernel)"']),
    "kernel of another Python": (
        dict(probe__kernel={"argv0": "/usr/bin/python3", "display_name": "Python 3 (ipykernel)", "dir": "/x"}),
        ["runs /usr/bin/python3, not .venv's Python", "ipykernel install --sys-prefix"]),
    "kernel named otherwise": (
        dict(probe__kernel={"argv0": "/course/.venv/bin/python", "display_name": "Python 3 (PyTorch course)",
                            "dir": "/x"}),
        ['registered as "Python 3 (PyTorch course)" while the lessons name "Python 3 (ipykernel)"',
         'JupyterLab rewrites', '--display-name "Python 3 (ipykernel)"']),
    "no ipykernel": (dict(probe__ipykernel_version=None), ["ipykernel is not installed"]),
    "no torch": (dict(probe__torch_version=None), ["torch: not installed → bash course.sh setup"]),
    "torch below the floor": (dict(probe__torch_version="2.5.1", probe__below_floor={"torch": "2.5.1"}),
                              ["2.5.1 is older than the oldest the course supports, 2.6.0", "rm -rf .venv"]),
    "torchvision below the floor": (
        dict(probe__torchvision_version="0.20.1", probe__below_floor={"torchvision": "0.20.1"}),
        ["torchvision: 0.20.1 is older than the oldest the course supports, 0.21.0"]),
    "torch does not import": (dict(probe__torch_error="OSError: libcudnn.so.9: cannot open shared object file"),
                              ["installed but does not import: OSError: libcudnn.so.9"]),
    "driver but CPU build": (dict(probe__cuda=False, probe__cuda_build=None),
                             ["NVIDIA driver (550.54) but torch is a CPU build", "COURSE_TORCH=pypi bash course.sh setup"]),
    "driver too old": (dict(probe__cuda=False, probe__cuda_reason="The NVIDIA driver on your system is too old"),
                       ["CUDA does not work: The NVIDIA driver on your system is too old", "supports CUDA 13.0"]),
    "device asked for that is absent": (dict(course_device="mps"),
                                        ["COURSE_DEVICE=mps asks for a device this machine does not have (it has: cuda, "
                                         "cpu)", "unset COURSE_DEVICE"]),
    "data folder read-only": (dict(data_writable=False), ["/course/data cannot be written", "COURSE_DATA_ROOT"]),
    "mirror missing": (dict(mirror="/mnt/mirror"), ["COURSE_DATA_MIRROR=/mnt/mirror is not a folder", "unset it"]),
    "disk full for data": (dict(free_data=0.3e9, datasets={**HEALTHY["datasets"], "CIFAR-10": None}),
                           ["0.3 GB free where the datasets go", "COURSE_DATA_ROOT"]),
    "disk full for the set-up": (dict(venv=False, free_root=2e9),
                                 ["2.0 GB free for .venv/", "bash course.sh setup --cpu"]),
    "no dashboards": (dict(probe__visdom_version=None), ["visdom not installed", "bash course.sh setup"]),
}


@pytest.mark.parametrize("case", CASES)
def test_each_problem_is_one_line_with_its_fix(case):
    """Bug caught: a broken set-up the doctor calls healthy, or a diagnosis without its fix."""
    changes, words = CASES[case]
    found = problems(facts_with(**changes))
    if case in ("no venv", "disk full for the set-up"):  # without a venv, disk space for one is checked too
        found = [line for line in found if ("disk" in case) == line.startswith("✗ disk")]
    assert len(found) == 1, found
    assert " → " in found[0], "every problem names its fix"
    for word in words:
        assert word in found[0]


def test_cuda_absent_on_a_laptop_is_a_note_with_the_drivers_reason_and_the_cpu_build():
    """Bug caught: no word on why the lessons run on the CPU, or on the 3 GB of unused CUDA libraries."""
    facts = facts_with(driver=None, probe__cuda=False, probe__cuda_reason="Found no NVIDIA driver on your system")
    assert problems(facts) == []
    device = next(f for f in diagnose(facts) if f.topic == "device")
    assert device.level == NOTE
    assert "the lessons will use the CPU: CUDA is absent (Found no NVIDIA driver on your system)" in device.text
    assert "bash course.sh setup --cpu" in device.fix


def test_mps_and_a_cpu_build_on_a_machine_without_a_gpu_are_fine():
    """Bug caught: Apple's GPU not named, or a CPU build on a CPU-only machine called a problem."""
    mac = facts_with(system="Darwin", driver=None, probe__cuda=False, probe__cuda_build=None, probe__mps=True)
    assert "the lessons will use Apple's GPU (MPS)" in [f.text for f in diagnose(mac)]
    cpu = facts_with(driver=None, probe__cuda=False, probe__cuda_build=None)
    assert problems(cpu) == []
    assert any(f.text.startswith("the lessons will use the CPU") and f.level == OK for f in diagnose(cpu))


def test_no_chinese_font_is_a_note_with_the_package_to_install():
    """Bug caught: JupyterLab users on a Linux without a CJK font left with boxes and no word on the fix
    (a note, not a problem: the browser may run on another machine)."""
    font = [f for f in diagnose(facts_with(cjk_font=False)) if f.topic == "font"]
    assert [f.level for f in font] == [NOTE]
    assert "Chinese terms in JupyterLab as boxes" in font[0].text and "fonts-noto-cjk" in font[0].fix
    assert [f.topic for f in diagnose(facts_with(cjk_font=None))].count("font") == 0, "no fc-list: nothing said"


def test_datasets_not_here_yet_are_a_note_that_names_them_and_course_sh_data():
    """Bug caught: missing datasets called a problem (the lessons download them), or not named."""
    facts = facts_with(datasets={**HEALTHY["datasets"], "CIFAR-10": None, "ants/bees": "the mirror"},
                       mirror="/m", mirror_exists=True)
    data = [f for f in diagnose(facts) if f.topic == "data"]
    assert [f.level for f in data] == [NOTE]
    assert "ants/bees (the mirror)" in data[0].text and "not here yet: CIFAR-10" in data[0].text
    assert data[0].fix.endswith("bash course.sh data")


def test_changed_notebooks_and_another_python_are_notes_with_what_to_do():
    """Bug caught: the doctor silent about lessons that differ from the last commit, or about a kernel
    whose Python version JupyterLab will write into every lesson opened."""
    facts = facts_with(notebooks_changed=["05_cnn.ipynb"], probe__python="3.12.4")
    notes = {f.topic: f for f in diagnose(facts) if f.level == NOTE}
    assert "05_cnn.ipynb differ from the last commit" in notes["notebooks"].text
    assert "git stash" in notes["notebooks"].fix and "git checkout -- notebooks" in notes["notebooks"].fix
    assert "saved by Python 3.11.7 and .venv's Python is 3.12.4" in notes["kernel"].text


def test_a_python_that_does_not_run_is_one_problem_and_the_rest_still_checked():
    """Bug caught: the doctor crashing (or going silent) when the venv's Python is broken."""
    facts = facts_with(probe={"probe_error": "/course/.venv/bin/python failed: ImportError"})
    found = diagnose(facts)
    assert [f.topic for f in found if f.level == PROBLEM] == ["Python"]
    assert {"data", "disk", "notebooks"} <= {f.topic for f in found}


def test_outside_a_checkout_only_what_applies_is_checked():
    """Bug caught: Colab or a conda user told to run course.sh, or asked about a .venv they do not have."""
    facts = facts_with(checkout=False, venv=False, stamp_current=None, notebooks_changed=None,
                       probe__torch_version="2.5.1", probe__below_floor={"torch": "2.5.1"})
    found = diagnose(facts)
    assert {f.topic for f in found} & {"set-up", "kernel", "notebooks"} == set()
    assert problems(facts) == ["✗ torch: 2.5.1 is older than the oldest the course supports, 2.6.0 → "
                               "pip install -U 'torch>=2.6.0'"]


def test_a_conda_environment_is_checked_with_pip_and_ipykernel_fixes():
    """Bug caught: a learner on conda (no .venv) told that .venv is missing, or given course.sh fixes
    for an environment course.sh does not manage."""
    conda = facts_with(venv=False, own_env="conda environment /opt/conda/envs/pytorch-course",
                       venv_python="/opt/conda/envs/pytorch-course/bin/python",
                       probe__kernel={"argv0": "/usr/bin/python3", "display_name": "Python 3 (ipykernel)", "dir": "/k"},
                       probe__torch_version="2.5.1", probe__below_floor={"torch": "2.5.1"})
    found = diagnose(conda)
    assert next(f for f in found if f.topic == "set-up").text == (
        "checking the conda environment /opt/conda/envs/pytorch-course (there is no .venv/)")
    assert problems(conda) == [
        "✗ kernel: the notebooks' python3 kernel runs /usr/bin/python3, not this environment's Python, so the "
        "lessons would not see the course's packages → python -m ipykernel install --user --name python3 "
        '--display-name "Python 3 (ipykernel)"',
        "✗ torch: 2.5.1 is older than the oldest the course supports, 2.6.0 → pip install -U 'torch>=2.6.0'"]


# ------------------------------------------------------------------------------ the gathering
def test_dataset_places_tell_data_from_the_mirror_by_the_files(tmp_path):
    """Bug caught: a dataset reported ready when only part of it is there, or the mirror's CIFAR-10
    folders not recognised."""
    data, mirror = tmp_path / "data", tmp_path / "mirror"
    for name in doctor.IDX_NAMES:
        (data / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)
        (data / "MNIST" / "raw" / f"{name}.gz").write_bytes(b"x")
    (data / "FashionMNIST" / "raw").mkdir(parents=True)
    (data / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"x")  # 1 of 4 files
    for split in ("train", "test-lossless"):
        (mirror / "cifar10-images" / split).mkdir(parents=True)
    for split in ("train", "val"):
        (mirror / "hymenoptera_data" / split / "ants").mkdir(parents=True)  # no bees
    assert dataset_places(data, mirror) == {"MNIST": "data/", "FashionMNIST": None, "CIFAR-10": "the mirror",
                                            "ants/bees": None}
    assert dataset_places(data, None)["CIFAR-10"] is None


def test_stamp_check_matches_what_course_sh_writes(tmp_path):
    """Bug caught: the doctor calling a fresh .venv stale (or a stale one fresh): its stamp must be
    course.sh's, byte for byte."""
    text = (ROOT / "course.sh").read_text()
    assert 'echo "torch: $build, kernel: $display"' in text  # the line both write and compare
    venv = tmp_path / "venv"
    venv.mkdir()
    kernel = doctor.course_kernel_name(ROOT)
    (venv / ".course-torch").write_text("cpu\n")
    stamp = "".join((ROOT / n).read_text() for n in ("requirements.txt", "constraints.txt", "pyproject.toml"))
    (venv / ".course-installed").write_text(stamp + f"torch: cpu, kernel: {kernel}\n")
    assert stamp_is_current(ROOT, venv, kernel)
    (venv / ".course-installed").write_text(stamp + f"torch: pypi, kernel: {kernel}\n")
    assert not stamp_is_current(ROOT, venv, kernel)


def test_floors_come_from_requirements_floor_in_a_checkout():
    """Bug caught: the doctor checking torch against another floor than the course's."""
    floor = (ROOT / "requirements-floor.txt").read_text()
    found = floors(ROOT)
    assert set(found) == {"torch", "torchvision"}
    assert all(f"{name}=={version}" in floor for name, version in found.items())


def test_the_probe_compares_versions_with_packaging():
    """Bug caught: a version floor compared by splitting strings ("2.10" < "2.6" as text)."""
    assert "from packaging.version import Version" in doctor.PROBE and ".split(\".\")" not in doctor.PROBE
    facts = doctor.probe(sys.executable, None)
    assert facts["python"] and "torch_version" in facts
    # a Python whose torch is 2.10: newer than 2.6, yet older when compared as text
    run = subprocess.run([sys.executable, "-c",
                          "import importlib.metadata as m, sys, json; real = m.version\n"
                          "m.version = lambda n: '2.10.0' if n == 'torch' else real(n)\n"
                          f"exec(compile({doctor.PROBE!r}, 'probe', 'exec'))",
                          json.dumps({"torch": "2.6.0"}), json.dumps({})],
                         capture_output=True, text=True, timeout=120)
    assert json.loads(run.stdout.splitlines()[-1])["below_floor"] == {}, run.stderr


def test_the_doctor_runs_on_this_checkout():
    """Bug caught: `bash course.sh doctor` crashing on a real machine instead of reporting."""
    run = subprocess.run([sys.executable, str(ROOT / "helpers" / "doctor.py")], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert run.returncode in (0, 1), run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("Checking the course's set-up")
    assert lines[-1].endswith("found.")
    assert all(line[:2] in ("✓ ", "✗ ", "! ") for line in lines[1:-1]), lines
    assert any(line.startswith(("✓ torch:", "✗ torch:")) for line in lines)
