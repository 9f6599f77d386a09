"""What is wrong with this set-up, and how to fix it: ``bash course.sh doctor``.

One line per check: ``✓`` what is fine, ``✗`` a problem with its fix after ``→``, ``!`` something
to know (also with what to do about it). The exit status is 1 when a problem was found. It looks at:
the Python version; the ``.venv`` and the notebooks' kernel registered in it; torch and torchvision
against the oldest versions the course supports; the device the lessons will use (and, when CUDA is
absent, why); the data folder, the offline mirror and which datasets are ready; free disk space;
TensorBoard and visdom; a font for the Chinese terms; whether the notebooks differ from the last
commit.

It runs with the standard library only, so that it speaks when torch is missing: what the lessons'
Python has (torch, the device, the kernel) comes from a probe run in that Python (``.venv``'s when
there is one), and :func:`diagnose` turns those facts into the lines, with nothing else to look at
(the tests feed it faked facts). Outside a checkout of the course (``pip install`` into an
environment of your own, Colab) it checks what applies: ``python -m helpers.doctor``.
"""
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

OK, NOTE, PROBLEM = "✓", "!", "✗"
MIN_PYTHON = (3, 10)
GB = 1e9
# What the datasets take in data/ once downloaded, unpacked and cached: all of them, about 0.8 GB.
DATA_NEED_GB = 0.8
# What a first set-up takes in .venv/: torch with its CUDA libraries makes it about 6 GB on Linux
# (about 1.6 GB with torch's CPU build).
VENV_NEED_GB = 7.0
KERNEL_FIX = '.venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "{name}"'
CJK_FONT_FIX = ("install a CJK font, e.g. `sudo apt install fonts-noto-cjk` (Debian, Ubuntu) or "
                "`sudo dnf install google-noto-sans-cjk-fonts` (Fedora), then reload the page")
DATASETS = ("MNIST", "FashionMNIST", "CIFAR-10", "ants/bees")
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
CIFAR10_PICKLES = ("batches.meta", "test_batch") + tuple(f"data_batch_{i}" for i in range(1, 6))


class Finding:
    """One line of the report: its level (OK, NOTE or PROBLEM), its topic, what and the fix."""

    def __init__(self, level: str, topic: str, text: str, fix: str | None = None):
        self.level, self.topic, self.text, self.fix = level, topic, text, fix

    def line(self) -> str:
        return f"{self.level} {self.topic}: {self.text}" + (f" → {self.fix}" if self.fix else "")

    def __repr__(self):
        return f"Finding({self.line()!r})"


# ------------------------------------------------------------------------------ the facts
PROBE = r"""
import importlib.metadata as metadata, importlib.util, json, os, platform, sys
facts = {"python": platform.python_version(), "executable": sys.executable, "prefix": sys.prefix}
for name in ("torch", "torchvision", "tensorboard", "visdom", "ipykernel", "jupyterlab", "packaging"):
    try:
        facts[name + "_version"] = metadata.version(name)
    except metadata.PackageNotFoundError:
        facts[name + "_version"] = None
try:
    from packaging.version import Version
except ImportError:  # pip vendors it
    from pip._vendor.packaging.version import Version
floors = json.loads(sys.argv[1])
facts["below_floor"] = {name: facts[name + "_version"] for name, floor in floors.items()
                        if facts[name + "_version"] and Version(facts[name + "_version"]) < Version(floor)}
pins = json.loads(sys.argv[2])
facts["above_pin"] = {name: facts[name + "_version"] for name, pin in pins.items()
                      if facts[name + "_version"] and Version(facts[name + "_version"]) > Version(pin)}
try:
    import torch
    facts["torch_error"] = None
    facts["cuda_build"] = torch.version.cuda
    facts["cuda"] = torch.cuda.is_available()
    facts["cuda_name"] = torch.cuda.get_device_name(0) if facts["cuda"] else None
    facts["cuda_reason"] = None
    if not facts["cuda"] and torch.version.cuda:
        try:
            torch.cuda.init()
        except Exception as exc:  # the driver's own words: none found, too old, ...
            facts["cuda_reason"] = str(exc).strip().splitlines()[0].split(". ")[0].rstrip(".")
    mps = getattr(torch.backends, "mps", None)
    facts["mps"] = bool(mps is not None and mps.is_available())
except Exception as exc:
    facts["torch_error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
try:
    from jupyter_client.kernelspec import KernelSpecManager
    spec = KernelSpecManager().get_kernel_spec("python3")
    facts["kernel"] = {"argv0": spec.argv[0], "display_name": spec.display_name, "dir": spec.resource_dir}
except Exception:
    facts["kernel"] = None
print(json.dumps(facts))
"""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _pins(path: Path) -> dict[str, str]:
    """``{"torch": "2.6.0", ...}``: the name==version lines of a requirements file."""
    return {m[1].lower(): m[2] for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s#;]+)", _read(path), re.M)}


def floors(root: Path | None) -> dict[str, str]:
    """The oldest torch and torchvision the course supports: requirements-floor.txt in a checkout,
    else the installed package's own requirements (``torch>=2.6``)."""
    if root is not None and (root / "requirements-floor.txt").is_file():
        return {k: v for k, v in _pins(root / "requirements-floor.txt").items() if k in ("torch", "torchvision")}
    try:
        from importlib.metadata import requires

        found = {}
        for requirement in requires("pytorch-course-helpers") or []:
            m = re.match(r"(torch|torchvision)\s*>=\s*([\w.]+)", requirement)
            if m:
                found[m[1]] = m[2]
        return found
    except Exception:
        return {}


def probe(python: str, root: Path | None, timeout: float = 180) -> dict:
    """Run ``PROBE`` in ``python``: what the lessons' Python has. ``{"probe_error": ...}`` when
    it cannot run at all."""
    pins = {k: v for k, v in _pins(root / "requirements.txt").items() if k in ("torch", "torchvision")} if root else {}
    try:
        run = subprocess.run([python, "-c", PROBE, json.dumps(floors(root)), json.dumps(pins)],
                             capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, "PYTHONWARNINGS": "ignore"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"probe_error": f"{python} did not answer: {exc}"}
    if run.returncode != 0 or not run.stdout.strip():
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        return {"probe_error": f"{python} failed: {last}"}
    facts = json.loads(run.stdout.strip().splitlines()[-1])
    facts["floors"], facts["pins"] = floors(root), pins
    return facts


def nvidia_driver() -> str | None:
    """The NVIDIA driver's version when one is installed ("" when present but unreadable), else None."""
    version = Path("/proc/driver/nvidia/version")
    if version.is_file():
        m = re.search(r"Kernel Module\s+([\d.]+)", _read(version))
        return m[1] if m else ""
    smi = shutil.which("nvidia-smi") or next(iter(Path("/usr/lib/wsl/lib").glob("nvidia-smi")), None)
    if not smi:
        return None
    try:
        run = subprocess.run([str(smi), "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return run.stdout.strip().splitlines()[0] if run.returncode == 0 and run.stdout.strip() else ""
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return ""


def dataset_places(data_root: Path, mirror: Path | None) -> dict[str, str | None]:
    """Where each dataset is ready: ``"data/"``, ``"the mirror"`` or None (downloaded on first use).
    Judged by the files being there, not by reading them."""

    def idx(base: Path) -> bool:
        return all((base / "raw" / n).is_file() or (base / "raw" / f"{n}.gz").is_file() for n in IDX_NAMES)

    def cifar_data(base: Path) -> bool:
        pickles = all((base / "cifar-10-batches-py" / n).is_file() for n in CIFAR10_PICKLES)
        cache = all((base / "CIFAR10" / f"{s}_uint8.pt").is_file() for s in ("train", "test"))
        return pickles or cache

    def cifar_mirror(base: Path) -> bool:
        folders = base / "cifar10-images"
        return (folders / "train").is_dir() and any((folders / s).is_dir() for s in ("test-lossless", "test"))

    def bees(base: Path) -> bool:
        return all((base / "hymenoptera_data" / s / c).is_dir() for s in ("train", "val") for c in ("ants", "bees"))

    checks = {"MNIST": (lambda b: idx(b / "MNIST"),) * 2, "FashionMNIST": (lambda b: idx(b / "FashionMNIST"),) * 2,
              "CIFAR-10": (cifar_data, cifar_mirror), "ants/bees": (bees, bees)}
    places = {}
    for name, (in_data, in_mirror) in checks.items():
        if in_data(data_root):
            places[name] = "data/"
        elif mirror is not None and in_mirror(mirror):
            places[name] = "the mirror"
        else:
            places[name] = None
    return places


def _free_bytes(path: Path) -> float | None:
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def _writable(path: Path) -> bool:
    for folder in (path, *path.parents):
        if folder.exists():
            return os.access(folder, os.W_OK)
    return False


def _git(root: Path, *args) -> str | None:
    try:
        run = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return run.stdout if run.returncode == 0 else None


def _cjk_font() -> bool | None:
    """Whether fontconfig knows a font with Chinese glyphs (None where it cannot tell: no fc-list)."""
    if platform.system() != "Linux" or not shutil.which("fc-list"):
        return None
    try:
        run = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return bool(run.stdout.strip())


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _own_environment() -> str | None:
    """The conda environment or virtual environment this Python runs in, if any."""
    if os.environ.get("CONDA_PREFIX") and Path(sys.prefix).resolve() == Path(os.environ["CONDA_PREFIX"]).resolve():
        return f"conda environment {sys.prefix}"
    if sys.prefix != sys.base_prefix:
        return f"virtual environment {sys.prefix}"
    return None


def course_kernel_name(root: Path) -> str | None:
    """The kernel display name course.sh registers (its KERNEL_DISPLAY_NAME)."""
    m = re.search(r'^KERNEL_DISPLAY_NAME="([^"]+)"', _read(root / "course.sh"), re.M)
    return m[1] if m else None


def stamp_is_current(root: Path, venv: Path, kernel: str | None) -> bool:
    """Whether ``venv`` was set up from today's requirements (course.sh's stamp, the same text)."""
    build = _read(venv / ".course-torch").strip() or "pypi"
    expected = "".join(_read(root / n) for n in ("requirements.txt", "constraints.txt", "pyproject.toml"))
    expected += f"torch: {build}, kernel: {kernel}\n"
    return _read(venv / ".course-installed") == expected


def gather(root: Path | None = None) -> dict:
    """Every fact :func:`diagnose` needs, from this machine."""
    from_checkout = root is not None and (root / "course.sh").is_file() and (root / "notebooks").is_dir()
    root = root if from_checkout else None
    facts: dict = {"checkout": root is not None, "system": platform.system(), "machine": platform.machine()}
    venv = root / ".venv" if root else None
    facts["venv"] = bool(venv and (venv / "bin" / "python").exists())
    # without .venv, an environment of the learner's own (conda, a venv) that runs this is the one checked
    facts["own_env"] = None if facts["venv"] else _own_environment()
    python = str(venv / "bin" / "python") if facts["venv"] else sys.executable
    facts["probe"] = probe(python, root)
    facts["driver"] = nvidia_driver()
    facts["course_device"] = os.environ.get("COURSE_DEVICE", "").strip() or None
    data_value = os.environ.get("COURSE_DATA_ROOT", "").strip()
    data_root = Path(data_value).expanduser() if data_value else ((root / "data") if root else Path.cwd() / "data")
    mirror_value = os.environ.get("COURSE_DATA_MIRROR", "").strip()
    mirror = Path(mirror_value).expanduser() if mirror_value else None
    facts["data_root"], facts["data_writable"] = str(data_root), _writable(data_root)
    facts["mirror"] = mirror_value or None
    facts["mirror_exists"] = bool(mirror and mirror.is_dir())
    facts["datasets"] = dataset_places(data_root, mirror if facts["mirror_exists"] else None)
    facts["free_data"] = _free_bytes(data_root)
    facts["free_root"] = _free_bytes(root) if root else None
    facts["cjk_font"] = _cjk_font()
    facts["visdom_server"] = _port_open(8097)
    if root:
        kernel = course_kernel_name(root)
        facts["course_kernel"] = kernel
        facts["stamp_current"] = facts["venv"] and stamp_is_current(root, venv, kernel)
        facts["venv_python"] = str((venv / "bin" / "python").absolute()) if facts["venv"] else sys.executable
        lessons = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        metadata = [json.loads(_read(p) or "{}").get("metadata", {}) for p in lessons]
        facts["notebook_kernels"] = sorted({m.get("kernelspec", {}).get("display_name", "") for m in metadata})
        facts["notebook_pythons"] = sorted({m.get("language_info", {}).get("version", "") for m in metadata} - {""})
        changed = _git(root, "diff", "--name-only", "HEAD", "--", "notebooks")
        facts["notebooks_changed"] = None if changed is None else [Path(n).name for n in changed.split()]
    return facts


# ------------------------------------------------------------------------------ the diagnosis
def _gb(n: float) -> str:
    return f"{n / GB:.1f} GB"


def _python(facts) -> list[Finding]:
    p = facts["probe"]
    version = p["python"]
    where = ".venv" if facts.get("venv") else p.get("executable", "this Python")
    managed = _course_managed(facts)
    if tuple(int(x) for x in re.findall(r"\d+", version)[:2]) < MIN_PYTHON:
        fix = ("install Python 3.11, then: rm -rf .venv && PYTHON=python3.11 bash course.sh setup"
               if managed else "use Python 3.10 or newer (3.11 recommended)")
        return [Finding(PROBLEM, "Python", f"{version} ({where}) is too old: the course needs 3.10 or newer", fix)]
    return [Finding(OK, "Python", f"{version} ({where})")]


def _venv(facts) -> list[Finding]:
    if not facts["checkout"]:
        return []
    if not facts["venv"] and facts.get("own_env"):
        return [Finding(OK, "set-up", f"checking the {facts['own_env']} (there is no .venv/)")]
    if not facts["venv"]:
        return [Finding(PROBLEM, "set-up", ".venv/ does not exist yet", "bash course.sh setup (or bash course.sh lab)")]
    if not facts["stamp_current"]:
        return [Finding(PROBLEM, "set-up", ".venv/ was set up from older requirements (or the set-up stopped half-way)",
                        "bash course.sh setup")]
    return [Finding(OK, "set-up", ".venv/ is up to date with requirements.txt")]


def _kernel(facts) -> list[Finding]:
    p = facts["probe"]
    if not facts["checkout"] or not (facts["venv"] or facts.get("own_env")):
        return []
    wanted = facts.get("course_kernel") or "Python 3 (ipykernel)"
    fix = KERNEL_FIX.format(name=wanted)
    env = ".venv's Python"
    if not facts["venv"]:  # conda's recipe registers the kernel for the user
        fix = f'python -m ipykernel install --user --name python3 --display-name "{wanted}"'
        env = "this environment's Python"
    kernel = p.get("kernel")
    if p.get("ipykernel_version") is None:
        return [Finding(PROBLEM, "kernel", f"ipykernel is not installed for {env}", "bash course.sh setup"
                        if facts["venv"] else "pip install ipykernel")]
    if not kernel:
        return [Finding(PROBLEM, "kernel", "no python3 kernel is registered: the notebooks cannot start", fix)]
    argv0 = kernel["argv0"]
    if os.path.realpath(argv0) != os.path.realpath(facts["venv_python"]) and argv0 not in ("python", "python3"):
        return [Finding(PROBLEM, "kernel", f"the notebooks' python3 kernel runs {argv0}, not {env}, so the "
                        "lessons would not see the course's packages", fix)]
    found = [Finding(OK, "kernel", f"python3, \"{kernel['display_name']}\", runs {env}")]
    if facts.get("notebook_kernels") and facts["notebook_kernels"] != [kernel["display_name"]]:
        names = ", ".join(f'"{n}"' for n in facts["notebook_kernels"])
        found = [Finding(PROBLEM, "kernel", f"registered as \"{kernel['display_name']}\" while the lessons name {names}: "
                         "JupyterLab rewrites a lesson's metadata when you open it, so git sees it changed", fix)]
    saved = facts.get("notebook_pythons") or []
    if saved and p["python"] not in saved:
        found.append(Finding(NOTE, "kernel", f"the lessons were saved by Python {', '.join(saved)} and {env} is "
                             f"{p['python']}: JupyterLab writes the kernel's version into a lesson you open, so git "
                             "will list it as changed",
                             "before `git pull`, keep your changes with `git stash` (or drop them: git checkout -- notebooks)"))
    return found


def _course_managed(facts) -> bool:
    """Whether course.sh manages the environment checked (.venv/), so that its commands are the fixes."""
    return facts["checkout"] and not facts.get("own_env")


def _torch(facts) -> list[Finding]:
    p = facts["probe"]
    setup = "bash course.sh setup" if _course_managed(facts) else "pip install -U torch torchvision"
    found = []
    for name in ("torch", "torchvision"):
        version, floor = p.get(f"{name}_version"), p.get("floors", {}).get(name)
        if version is None:
            found.append(Finding(PROBLEM, name, "not installed", setup))
        elif name in p.get("below_floor", {}):
            fix = ("rm -rf .venv && bash course.sh setup" if _course_managed(facts)
                   else f"pip install -U '{name}>={floor}'")
            found.append(Finding(PROBLEM, name, f"{version} is older than the oldest the course supports, {floor}", fix))
        else:
            newer = f" (newer than the {p['pins'][name]} the course is tested with)" if name in p.get("above_pin", {}) else ""
            found.append(Finding(OK, name, f"{version}{newer}" + (f", supported from {floor}" if floor else "")))
    if p.get("torch_version") and p.get("torch_error"):
        found.append(Finding(PROBLEM, "torch", f"installed but does not import: {p['torch_error']}",
                             "rm -rf .venv && bash course.sh setup" if _course_managed(facts) else setup))
    return found


def _device(facts) -> list[Finding]:
    p = facts["probe"]
    if p.get("torch_version") is None or p.get("torch_error"):
        return []
    driver = facts.get("driver")
    chosen = facts.get("course_device")
    kinds = (["cuda"] if p["cuda"] else []) + (["mps"] if p["mps"] else []) + ["cpu"]
    if chosen:
        kind = chosen.lower().split(":")[0]
        if kind not in kinds:
            return [Finding(PROBLEM, "device", f"COURSE_DEVICE={chosen} asks for a device this machine does not have "
                            f"(it has: {', '.join(kinds)})", "unset COURSE_DEVICE, or set it to one of those")]
    if p["cuda"]:
        return [Finding(OK, "device", f"the lessons will use CUDA: {p['cuda_name']}"
                        + (f" (COURSE_DEVICE={chosen})" if chosen else ""))]
    if p["mps"] and (not chosen or chosen.lower() == "mps"):
        return [Finding(OK, "device", "the lessons will use Apple's GPU (MPS)")]
    where = f" (COURSE_DEVICE={chosen})" if chosen else ""
    if driver is not None and not p.get("cuda_build"):
        fix = ("rm -rf .venv && COURSE_TORCH=pypi bash course.sh setup" if _course_managed(facts)
               else "install a CUDA build of torch (pip install torch from PyPI)")
        return [Finding(PROBLEM, "device", f"this machine has an NVIDIA driver{f' ({driver})' if driver else ''} but "
                        "torch is a CPU build: the lessons run on the CPU", fix)]
    if driver is not None and p.get("cuda_build"):
        reason = p.get("cuda_reason") or "torch.cuda.is_available() is False"
        return [Finding(PROBLEM, "device", f"NVIDIA driver {driver or '(version unknown)'} found, but CUDA does not "
                        f"work: {reason}", f"update the NVIDIA driver to one that supports CUDA {p['cuda_build']}, "
                        "then restart the machine")]
    if p.get("cuda_build") and facts["system"] == "Linux":
        reason = p.get("cuda_reason") or "no NVIDIA driver found"
        note = Finding(NOTE, "device", f"the lessons will use the CPU{where}: CUDA is absent ({reason}); torch's CUDA "
                       "libraries (about 4 GB of .venv) are not used here",
                       "rm -rf .venv && bash course.sh setup --cpu installs the CPU build (about 190 MB)"
                       if _course_managed(facts) else None)
        return [note]
    return [Finding(OK, "device", f"the lessons will use the CPU{where}"
                    + (" (no GPU: quick mode, COURSE_QUICK=1, makes a first skim fast)" if not where else ""))]


def _data(facts) -> list[Finding]:
    found = []
    if not facts["data_writable"]:
        found.append(Finding(PROBLEM, "data", f"{facts['data_root']} cannot be written: datasets and caches go there",
                             "set COURSE_DATA_ROOT to a folder of yours"))
    if facts["mirror"] and not facts["mirror_exists"]:
        found.append(Finding(PROBLEM, "data", f"COURSE_DATA_MIRROR={facts['mirror']} is not a folder",
                             "point it at the mirror's folder, or unset it"))
    places = facts["datasets"]
    ready = [f"{name} ({place})" for name, place in places.items() if place]
    missing = [name for name, place in places.items() if not place]
    mirror = f", mirror {facts['mirror']}" if facts["mirror"] and facts["mirror_exists"] else ", no mirror"
    text = f"data in {facts['data_root']}{mirror}; ready: {', '.join(ready) or 'none yet'}"
    if missing:
        get = "bash course.sh data" if facts["checkout"] else "the first lesson that needs each"
        found.append(Finding(NOTE, "data", f"{text}; not here yet: {', '.join(missing)} (the lessons download them "
                             "when first needed)", f"to get them all now, e.g. before going offline: {get}"))
    else:
        found.append(Finding(OK, "data", text))
    return found


def _disk(facts) -> list[Finding]:
    found = []
    free = facts.get("free_data")
    missing = [n for n, place in facts["datasets"].items() if not place]
    if free is not None and missing and free < DATA_NEED_GB * GB:
        found.append(Finding(PROBLEM, "disk", f"{_gb(free)} free where the datasets go ({facts['data_root']}); "
                             f"all of them take about {DATA_NEED_GB:.1f} GB",
                             "free some space, or set COURSE_DATA_ROOT to a disk with room"))
    root_free = facts.get("free_root")
    if _course_managed(facts) and not facts["venv"] and root_free is not None and root_free < VENV_NEED_GB * GB:
        found.append(Finding(PROBLEM, "disk", f"{_gb(root_free)} free for .venv/, which takes about 6 GB with "
                             "PyPI's torch (CUDA libraries included)",
                             "free some space, or on a machine without an NVIDIA GPU: bash course.sh setup --cpu "
                             "(about 1.6 GB)"))
    if not found and free is not None:
        found.append(Finding(OK, "disk", f"{_gb(free)} free for data"))
    return found


def _dashboards(facts) -> list[Finding]:
    p = facts["probe"]
    fix = "bash course.sh setup" if _course_managed(facts) else (
        "PIP_CONSTRAINT=constraints.txt PIP_BUILD_CONSTRAINT=constraints.txt pip install 'pytorch-course-helpers[logging]'")
    missing = [name for name in ("tensorboard", "visdom") if p.get(f"{name}_version") is None]
    if missing:
        return [Finding(PROBLEM, "dashboards", f"{' and '.join(missing)} not installed (lessons 04 and 06 use them)", fix)]
    server = ("a server answers on 127.0.0.1:8097" if facts["visdom_server"]
              else "start a visdom server with: bash course.sh visdom")
    return [Finding(OK, "dashboards", f"TensorBoard {p['tensorboard_version']} and visdom {p['visdom_version']} "
                    f"installed; {server}")]


def _font(facts) -> list[Finding]:
    if facts.get("cjk_font") is False:
        return [Finding(NOTE, "font", "no font with Chinese characters is installed here: a browser on this "
                        "machine shows the lessons' Chinese terms in JupyterLab as boxes", CJK_FONT_FIX)]
    if facts.get("cjk_font"):
        return [Finding(OK, "font", "a font for the Chinese terms is installed")]
    return []


def _notebooks(facts) -> list[Finding]:
    if not facts["checkout"] or facts.get("notebooks_changed") is None:
        return []
    changed = facts["notebooks_changed"]
    if not changed:
        return [Finding(OK, "notebooks", "as in the last commit")]
    return [Finding(NOTE, "notebooks", f"{', '.join(changed)} differ from the last commit (your runs and answers): "
                    "`bash course.sh test` checks your copies and `git pull` may refuse to merge",
                    "keep them aside with `git stash` (back with `git stash pop`), or drop them: "
                    "git checkout -- notebooks")]


def diagnose(facts: dict) -> list[Finding]:
    """The report's lines, from :func:`gather`'s facts."""
    p = facts["probe"]
    if "probe_error" in p:
        fix = "rm -rf .venv && bash course.sh setup" if facts.get("venv") else "bash course.sh setup"
        found = [Finding(PROBLEM, "Python", f"the lessons' Python does not run: {p['probe_error']}", fix)]
        return found + _data(facts) + _disk(facts) + _font(facts) + _notebooks(facts)
    return (_python(facts) + _venv(facts) + _kernel(facts) + _torch(facts) + _device(facts) + _data(facts)
            + _disk(facts) + _dashboards(facts) + _font(facts) + _notebooks(facts))


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the gathered facts as JSON instead")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent.parent
    print("Checking the course's set-up (a few seconds: torch is imported once) ...", flush=True)
    facts = gather(here)
    if args.json:
        print(json.dumps(facts, indent=1))
        return 0
    findings = diagnose(facts)
    for finding in findings:
        print(finding.line())
    problems = sum(f.level == PROBLEM for f in findings)
    print(f"{problems} problem{'s' if problems != 1 else ''} found." if problems else "No problems found.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
