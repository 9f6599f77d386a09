"""course.sh's set-up decisions on a faked machine: which build of torch it installs from where,
what it says on the way, and that it stops with a fix instead of hanging or mixing builds.

course.sh runs nothing when it is sourced, so each test sources it in bash, replaces the functions
that look at the machine (os_name, machine, has_nvidia_driver, installed_version) and the ones that
act (make_venv, run_pip, register_kernel, warm_imports) with fakes that log, and calls setup or
main. PyTorch's CPU index is never contacted: the fake pip fails where a test says it cannot be reached.
"""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _pinned(name, path=ROOT / "requirements.txt"):
    return re.search(rf"^{name}==(\S+)", path.read_text(), re.M)[1]


FAKES = r"""
os_name() { echo "$FAKE_OS"; }
machine() { echo "$FAKE_MACHINE"; }
has_nvidia_driver() { [[ "$FAKE_DRIVER" == 1 ]]; }
installed_version() { [[ "$2" == torch && -f "$1/torch-version" ]] && cat "$1/torch-version" || true; }
make_venv() { mkdir -p "$1/bin"; echo "venv $1" >> "$LOG"; }
run_pip() {
    shift
    echo "pip $*" >> "$LOG"
    if [[ " $* " == *" --index-url "* && "$FAKE_INDEX_DOWN" == 1 ]]; then
        echo "ERROR: Could not find a version that satisfies the requirement" >&2; return 1
    fi
}
register_kernel() { echo "kernel $2" >> "$LOG"; }
warm_imports() { echo "warm" >> "$LOG"; }
"""


def course(tmp_path, command="setup", *, os_name="Linux", arch="x86_64", driver=False, torch=None,
           index_down=False, env=None):
    """Run ``main COMMAND`` of the sourced course.sh on the faked machine; return (exit code,
    stderr, the fake pip's calls, the whole log)."""
    venv = tmp_path / "venv"
    log = tmp_path / "log"
    venv.mkdir(exist_ok=True)
    log.write_text("")
    if torch:
        (venv / "torch-version").write_text(torch)
    script = (f"source {shlex.quote(str(ROOT / 'course.sh'))}\n{FAKES}\n"
              f"VENV={shlex.quote(str(venv))}\nmain {command}\n")
    fake_env = {"FAKE_OS": os_name, "FAKE_MACHINE": arch, "FAKE_DRIVER": "1" if driver else "0",
                "FAKE_INDEX_DOWN": "1" if index_down else "0", "LOG": str(log),
                "PATH": os.environ["PATH"], "PYTHON": sys.executable, "HOME": str(tmp_path), **(env or {})}
    run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                         env=fake_env, cwd=tmp_path)
    lines = log.read_text().splitlines()
    return run.returncode, run.stderr, [line for line in lines if line.startswith("pip ")], lines


def test_linux_without_a_driver_says_in_one_line_what_the_cpu_build_saves(tmp_path):
    """Bug caught: a laptop without an NVIDIA GPU silently getting 3 GB of CUDA libraries."""
    code, err, pips, _ = course(tmp_path)
    assert code == 0, err
    hint = [line for line in err.splitlines() if "no NVIDIA driver" in line]
    assert len(hint) == 1
    assert "about 3 GB" in hint[0] and "about 190 MB" in hint[0] and "bash course.sh setup --cpu" in hint[0]
    assert pips[0] == "pip install -r requirements.txt"
    assert not any("--index-url" in p for p in pips)


@pytest.mark.parametrize("why", ["a driver", "macOS", "asked for PyPI's build"])
def test_no_hint_where_the_cpu_build_would_save_nothing_or_was_declined(tmp_path, why):
    """Bug caught: the CPU-build hint shown on a machine with an NVIDIA driver, on macOS, or after
    the learner chose PyPI's build."""
    kwargs = {"a driver": {"driver": True}, "macOS": {"os_name": "Darwin"},
              "asked for PyPI's build": {"env": {"COURSE_TORCH": "pypi"}}}[why]
    code, err, pips, _ = course(tmp_path, **kwargs)
    assert code == 0, err
    assert "no NVIDIA driver" not in err
    assert pips[0] == "pip install -r requirements.txt"


@pytest.mark.parametrize("how", ["COURSE_TORCH=cpu", "--cpu", "COURSE_TORCH=' CPU '"])
def test_cpu_build_comes_from_pytorchs_cpu_index_pinned_and_with_timeouts(tmp_path, how):
    """Bug caught: COURSE_TORCH=cpu (or --cpu) installing PyPI's CUDA build, a CPU build of another
    version than requirements.txt pins, or a pip call that can wait for ever."""
    if how == "--cpu":
        code, err, pips, log = course(tmp_path, "setup --cpu")
    else:
        code, err, pips, log = course(tmp_path, env={"COURSE_TORCH": how.split("=")[1].strip("'")})
    assert code == 0, err
    torch, vision = _pinned("torch"), _pinned("torchvision")
    assert pips[0] == (f"pip install --no-deps --index-url {CPU_INDEX} --timeout 30 --retries 2 "
                       f"torch=={torch}+cpu torchvision=={vision}+cpu")
    assert pips[1] == "pip install -r requirements.txt"  # the rest from PyPI; the CPU builds satisfy the pins
    assert pips[2] == "pip install -q --no-deps -e ."
    assert "no NVIDIA driver" not in err
    assert (tmp_path / "venv" / ".course-torch").read_text().strip() == "cpu"
    assert "kernel Python 3 (ipykernel)" in log and "warm" in log


def test_cpu_build_on_arm_linux_and_from_a_mirror(tmp_path):
    """Bug caught: the +cpu label pinned where the index's wheels have none (aarch64), or
    COURSE_TORCH_INDEX ignored."""
    mirror = "https://mirror.example/pytorch-wheels/cpu"
    code, err, pips, _ = course(tmp_path, arch="aarch64", env={"COURSE_TORCH": "cpu", "COURSE_TORCH_INDEX": mirror})
    assert code == 0, err
    assert pips[0].endswith(f"--index-url {mirror} --timeout 30 --retries 2 "
                            f"torch=={_pinned('torch')} torchvision=={_pinned('torchvision')}")


def test_cpu_request_on_macos_keeps_pypi_and_says_why(tmp_path):
    """Bug caught: macOS pointed at PyTorch's Linux CPU index (which has no macOS wheels to speak of)."""
    code, err, pips, _ = course(tmp_path, os_name="Darwin", env={"COURSE_TORCH": "cpu"})
    assert code == 0, err
    assert "COURSE_TORCH=cpu: on Darwin PyPI's torch has no CUDA libraries anyway" in err
    assert pips[0] == "pip install -r requirements.txt"


def test_unreachable_cpu_index_stops_with_the_fallback(tmp_path):
    """Bug caught: an unreachable CPU index hanging the set-up, or failing without saying how to go on."""
    code, err, pips, _ = course(tmp_path, env={"COURSE_TORCH": "cpu"}, index_down=True)
    assert code == 1
    assert len(pips) == 1, "nothing else is installed after the failure"
    assert f"could not install torch=={_pinned('torch')}+cpu" in err and CPU_INDEX in err
    assert "COURSE_TORCH=pypi bash course.sh setup" in err and "COURSE_TORCH_INDEX" in err
    assert not (tmp_path / "venv" / ".course-installed").exists()


@pytest.mark.parametrize("installed, asked", [("2.14.1", "cpu"), ("2.14.1+cpu", "pypi")])
def test_switching_builds_in_an_existing_venv_says_how(tmp_path, installed, asked):
    """Bug caught: a CPU build asked for over a CUDA build (pip keeps the CUDA one: 2.14.1 satisfies
    torch==2.14.1), or the reverse, reported as done."""
    code, err, pips, _ = course(tmp_path, torch=installed, env={"COURSE_TORCH": asked})
    assert code == 1 and pips == []
    assert f"holds torch {installed}" in err
    assert f"rm -rf venv && COURSE_TORCH={asked} bash course.sh setup" in err


def test_a_venv_keeps_its_build_when_nothing_is_asked(tmp_path):
    """Bug caught: `bash course.sh lab` without --cpu, after a CPU set-up, switching to (or
    complaining about) PyPI's build."""
    code, err, pips, _ = course(tmp_path, torch="2.14.1+cpu")
    assert code == 0, err
    assert "--index-url" in pips[0] and "no NVIDIA driver" not in err
    assert "is out of date" in err
    code, err, pips, _ = course(tmp_path, torch="2.14.1+cpu")  # now stamped: nothing to do
    assert code == 0 and pips == [] and err == ""


def test_unknown_torch_build_is_refused(tmp_path):
    """Bug caught: a typo such as COURSE_TORCH=gpu silently installing the default build."""
    code, err, pips, _ = course(tmp_path, env={"COURSE_TORCH": "gpu"})
    assert code == 1 and pips == []
    assert "COURSE_TORCH=gpu is not understood: use cpu" in err


def test_first_install_says_what_takes_long(tmp_path):
    """Bug caught: the first set-up silent for a minute or more while pip unpacks torch."""
    code, err, _, _ = course(tmp_path, driver=True)
    assert code == 0, err
    assert "silent while pip unpacks the packages" in err and "about 3 GB with its CUDA libraries" in err
    assert "matplotlib builds its font cache" in err and "is ready" in err


def test_floor_uses_the_floor_pins_and_the_same_kernel_name():
    """Bug caught: the oldest-torch venv installing the newest torch, or registering a kernel name
    that makes JupyterLab rewrite a lesson's metadata."""
    text = (ROOT / "course.sh").read_text()
    floor = text[text.index("\nfloor() {"):text.index("\n}\n", text.index("\nfloor() {"))]
    assert 'prepare_venv "$venv" "$KERNEL_DISPLAY_NAME" requirements-floor.txt' in floor
    assert "grep -vE '^(torch|torchvision)[=<>~! ]' requirements.txt" in floor


def test_pinned_version_reads_the_requirement_files(tmp_path):
    """Bug caught: the CPU build pinned to a version other than the one the requirement file names."""
    script = f"source {shlex.quote(str(ROOT / 'course.sh'))}; pinned_version torch requirements-floor.txt; " \
             "pinned_version torchvision requirements.txt"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.split() == [_pinned("torch", ROOT / "requirements-floor.txt"), _pinned("torchvision")]


def test_usage_lists_every_command():
    """Bug caught: a command that course.sh runs but its usage line hides."""
    run = subprocess.run(["bash", str(ROOT / "course.sh"), "nonsense"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    for command in ("lab", "test", "setup", "doctor", "data", "gpu", "visdom", "floor", "site", "--cpu"):
        assert command in run.stderr
