"""The bundle for a GPU machine without network: tools/gpu_pack.sh packs the data (from a mirror or
from data/) and wheels into parts that fit --part-size; tools/gpu_run.sh unpacks them once and refuses
to run on an incomplete bundle. Sizes are tiny: these check that the scripts work, not what they measure.
(tests/test_gpu_tools.py runs gpu_run.sh's dry mode end to end.)"""
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
MIRROR_LAYOUT = {"mnist": "MNIST/raw", "fashion-mnist": "FashionMNIST/raw", "cifar10": "cifar10-images/train",
                 "cifar10-test": "cifar10-images/test-lossless", "ants-bees": "hymenoptera_data/train"}


def _run(args, env=None, cwd=ROOT, timeout=120):
    base = {k: v for k, v in os.environ.items() if k not in ("COURSE_DATA_MIRROR", "COURSE_DATA_ROOT", "GPU_WHEELS")}
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**base, "PYTHON": sys.executable, **(env or {})})
    return result.returncode, result.stdout + result.stderr


def _fill(folder: Path, kib: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "blob.bin").write_bytes(os.urandom(kib * 1024))  # incompressible


def _mirror(tmp_path, sizes: dict) -> Path:
    mirror = tmp_path / "mirror"
    for name, kib in sizes.items():
        _fill(mirror / MIRROR_LAYOUT[name], kib)
    return mirror


def _wheels(tmp_path, *kibs) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    for i, kib in enumerate(kibs):
        (folder / f"pkg{i}-1.0-py3-none-any.whl").write_bytes(os.urandom(kib * 1024))
    return folder


def _part_files(out: Path) -> dict[str, list[str]]:
    return {p.name: sorted(str(f.relative_to(p)) for f in p.rglob("*") if f.is_file())
            for p in sorted(out.glob("part-*"))}


ALL = {"mnist": 60, "fashion-mnist": 50, "cifar10": 100, "cifar10-test": 40, "ants-bees": 300}


def test_one_part_by_default_with_the_data_and_the_wheels(tmp_path):
    """Bug caught: a bundle that lacks a dataset a lesson needs (Fashion-MNIST, lesson 03), or wheels."""
    mirror = _mirror(tmp_path, ALL)
    out = tmp_path / "bundle"
    code, output = _run(["bash", "tools/gpu_pack.sh", "--wheels", str(_wheels(tmp_path, 20, 30)), "--out", str(out)],
                        env={"COURSE_DATA_MIRROR": str(mirror)})
    assert code == 0, output
    assert _part_files(out) == {"part-1": ["ants-bees.tar", "cifar10.tar.xz", "fashion-mnist.tar", "mnist.tar",
                                           "wheels/pkg0-1.0-py3-none-any.whl", "wheels/pkg1-1.0-py3-none-any.whl"]}
    with tarfile.open(out / "part-1" / "cifar10.tar.xz") as tar:  # laid out as the mirror is
        names = tar.getnames()
    assert "cifar10-images/train/blob.bin" in names and "cifar10-images/test-lossless/blob.bin" in names
    bundle = (out / "BUNDLE.txt").read_text()
    assert "bash tools/gpu_run.sh OUTDIR" in bundle and "1 part," in bundle
    assert not re.search(r"\bcall|carry|lend|borrow|session", bundle + output, re.I)


def test_part_size_splits_the_bundle_into_parts_that_fit(tmp_path):
    """Bug caught: a part larger than --part-size, or an archive lost or stored twice on disk."""
    mirror = _mirror(tmp_path, ALL)
    out = tmp_path / "bundle"
    code, output = _run(["bash", "tools/gpu_pack.sh", "--wheels", str(_wheels(tmp_path, 150, 20)),
                         "--part-size", "0.4", "--out", str(out)], env={"COURSE_DATA_MIRROR": str(mirror)})
    assert code == 0, output
    parts = _part_files(out)
    assert len(parts) == 2  # 720 KiB in parts of at most 410 KiB
    for name in parts:
        assert sum(f.stat().st_size for f in (out / name).rglob("*") if f.is_file()) <= 0.4 * MIB
    carried = sorted(Path(f).name for files in parts.values() for f in files)
    assert carried == ["ants-bees.tar", "cifar10.tar.xz", "fashion-mnist.tar", "mnist.tar",
                       "pkg0-1.0-py3-none-any.whl", "pkg1-1.0-py3-none-any.whl"]
    assert "ants-bees.tar" in parts["part-1"]  # the largest first
    linked = out / "part-1" / "ants-bees.tar"
    assert linked.stat().st_ino == (out / "items" / "ants-bees.tar").stat().st_ino, "a hard link, not a copy"
    code, output = _run(["bash", "tools/gpu_pack.sh", "--part-size", "0.2", "--out", str(out)],
                        env={"COURSE_DATA_MIRROR": str(mirror)})
    assert code == 1
    assert "gpu_pack: ants-bees is 0.3 MiB, more than one part of 0.2 MiB can hold: choose a larger --part-size" in output


def test_data_from_a_download_in_data_and_what_is_missing(tmp_path):
    """Bug caught: gpu_pack.sh usable only with the course's own mirror (a learner has data/ after a
    download: CIFAR-10 as torchvision's pickles), or failing without saying what to do."""
    data = tmp_path / "data"
    for folder in ("MNIST/raw", "FashionMNIST/raw", "cifar-10-batches-py"):
        _fill(data / folder, 5)
    out = tmp_path / "bundle"
    code, output = _run(["bash", "tools/gpu_pack.sh", "--out", str(out)], env={"COURSE_DATA_ROOT": str(data)})
    assert code == 1
    assert "lacks ants-bees (hymenoptera_data)" in output and "bash course.sh data" in output
    _fill(data / "hymenoptera_data" / "train", 5)
    code, output = _run(["bash", "tools/gpu_pack.sh", "--out", str(out)], env={"COURSE_DATA_ROOT": str(data)})
    assert code == 0, output
    with tarfile.open(out / "part-1" / "cifar10.tar.xz") as tar:
        assert "cifar-10-batches-py/blob.bin" in tar.getnames()
    assert "no wheels" in (out / "BUNDLE.txt").read_text()


def test_an_empty_wheel_folder_is_refused(tmp_path):
    """Bug caught: --wheels naming a folder without wheels, found out only on the machine without network."""
    mirror = _mirror(tmp_path, ALL)
    (tmp_path / "empty").mkdir()
    code, output = _run(["bash", "tools/gpu_pack.sh", "--wheels", str(tmp_path / "empty"), "--out",
                         str(tmp_path / "b")], env={"COURSE_DATA_MIRROR": str(mirror)})
    assert code == 1 and "no wheels in" in output and "pip download" in output


def _bundle(tmp_path, names=("mnist",)) -> Path:
    """A bundle folder whose part-1 holds tiny archives of ``names`` in the mirror's layout."""
    gpu = tmp_path / "gpu"
    (gpu / "part-1").mkdir(parents=True)
    for name in names:
        source = tmp_path / "src" / MIRROR_LAYOUT[name]
        source.mkdir(parents=True)
        (source / "f.gz").write_bytes(b"x")
        with tarfile.open(gpu / "part-1" / f"{name}.tar", "w") as tar:
            tar.add(source, arcname=MIRROR_LAYOUT[name])
    return gpu


def test_gpu_run_unpacks_each_part_once_and_refuses_an_incomplete_bundle(tmp_path):
    """Bug caught: gpu_run.sh unpacking twice, or starting a run (then failing in a lesson) without the
    data the bundle should have brought."""
    gpu = _bundle(tmp_path)
    env = {"GPU_PACK_DIR": str(gpu)}
    code, output = _run(["bash", "tools/gpu_run.sh", "--unpack-only"], env=env)
    assert code == 0 and "unpacking" in output, output
    assert (gpu / "data" / "MNIST" / "raw" / "f.gz").read_bytes() == b"x"
    assert "still missing: FashionMNIST CIFAR-10 ants/bees" in output
    code, output = _run(["bash", "tools/gpu_run.sh", "--unpack-only"], env=env)
    assert code == 0 and "unpacking" not in output  # done once
    code, output = _run(["bash", "tools/gpu_run.sh", str(tmp_path / "out")], env=env)
    assert code == 3 and "the bundle lacks FashionMNIST CIFAR-10 ants/bees: copy every part" in output


def test_gpu_run_without_a_bundle_uses_the_usual_data_and_needs_a_gpu(tmp_path):
    """Bug caught: `bash course.sh gpu` on a machine set up by course.sh asking for a bundle, or running
    the lessons on the CPU and calling the results GPU results."""
    code, output = _run(["bash", "tools/gpu_run.sh", str(tmp_path / "out")],
                        env={"GPU_PACK_DIR": str(tmp_path / "none"), "CUDA_VISIBLE_DEVICES": ""})
    assert "data: the course's usual places" in output
    assert code == 4 and "no CUDA device here" in output and "bash course.sh doctor" in output
    code, output = _run(["bash", "tools/gpu_run.sh", "--unpack-only"], env={"GPU_PACK_DIR": str(tmp_path / "none")})
    assert code == 3 and "no bundle in" in output


def test_gpu_requirements_follow_requirements_txt():
    """Bug caught: the GPU machine's wheels made for other versions than the course pins."""
    def specs(path):
        found = {}
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", line).groups()
                found[name.lower()] = spec
        return found

    course, gpu = specs(ROOT / "requirements.txt"), specs(ROOT / "tools" / "gpu_requirements.txt")
    shared = set(course) & set(gpu)
    assert {"torch", "torchvision", "numpy", "matplotlib", "tqdm", "ipywidgets", "tensorboard"} <= shared
    assert {name: gpu[name] for name in shared} == {name: course[name] for name in shared}
    assert {"nbclient", "nbformat"} <= set(gpu)


@pytest.mark.parametrize("script", ["tools/gpu_pack.sh", "tools/gpu_run.sh"])
def test_the_gpu_tools_speak_of_the_course_only(script):
    """Bug caught: words about lent machines, device-tool calls and their limits in the learners' tools."""
    text = (ROOT / script).read_text()
    assert not re.search(r"device tool|\bcall-|\bcarry\b|lent|borrow|warm machine|session", text, re.I)
