"""The GPU tools (lesson 07's measurements): tools/gpu_pack.sh splits the packs into calls that fit,
tools/gpu_run.sh unpacks them and, in its dry mode, runs the benchmarks and a notebook end to end
on the CPU. Sizes are tiny: these check that the scripts work, not what they measure."""
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20


def _run(args, timeout=120, env=None, cwd=ROOT):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    return result.returncode, result.stdout + result.stderr


def test_a_benchmark_refuses_a_subset_too_small_for_its_steps(mirror):
    code, output = _run([sys.executable, "benchmarks/bench_cifar_resnet.py", "--device", "cpu", "--limit", "10",
                         "--batch-size", "8", "--steps", "2"])
    assert code == 2 and "--limit 10 holds fewer than (warmup + steps) * batch-size = 32 images" in output


# ------------------------------------------------------------------------------ gpu_pack.sh
def _fake_sources(tmp_path, sizes_kib: dict):
    """A mirror and a wheel folder whose items hold ``sizes_kib`` KiB of incompressible bytes."""
    folders = {"mnist": "MNIST/raw", "cifar10-train": "cifar10-images/train", "cifar10-test": "cifar10-images/test",
               "cifar10-test-lossless": "cifar10-images/test-lossless", "hymenoptera": "hymenoptera_data/train",
               "whl": None}
    for name, kib in sizes_kib.items():
        folder = tmp_path / "wheels" if name == "whl" else tmp_path / "mirror" / folders[name]
        folder.mkdir(parents=True)
        (folder / ("x.whl" if name == "whl" else "blob.bin")).write_bytes(os.urandom(kib * 1024))
    return {"COURSE_DATA_MIRROR": str(tmp_path / "mirror"), "GPU_WHEELS": str(tmp_path / "wheels"),
            "PYTHON": sys.executable}


@pytest.fixture
def checkout(tmp_path):
    """A small git checkout that holds gpu_pack.sh and ignores .gpu/, as the course's does."""
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "gpu_pack.sh", repo / "tools")
    (repo / ".gitignore").write_text("/.gpu/\n")
    (repo / "tracked.bin").write_bytes(os.urandom(100 * 1024))  # 100 KiB that travel with every call
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    return repo


def test_gpu_pack_splits_the_packs_into_calls_that_fit(checkout, tmp_path):
    env = _fake_sources(tmp_path, {"hymenoptera": 300, "whl": 150, "cifar10-test-lossless": 140,
                                   "cifar10-train": 100, "mnist": 60, "cifar10-test": 20})
    code, output = _run(["bash", "tools/gpu_pack.sh"], env={**env, "GPU_CALL_LIMIT_MB": "0.5"}, cwd=checkout)
    assert code == 0, output
    room = 0.5 * MIB * 63 / 64 - (100 * 1024 + (checkout / ".gitignore").stat().st_size
                                  + (checkout / "tools" / "gpu_pack.sh").stat().st_size)
    calls = sorted((checkout / ".gpu").glob("call-*"))
    assert len(calls) == 3  # 770 KiB of packs, about 390 KiB per call
    carried = []
    for call in calls:
        files = [f for f in call.rglob("*") if f.is_file()]
        assert sum(f.stat().st_size for f in files) <= room
        carried += [f.name for f in files]
    assert sorted(carried) == sorted(["hymenoptera.tar", "x.whl", "cifar10-test-lossless.tar.xz",
                                      "cifar10-train.tar.xz", "mnist.tar", "cifar10-test.tar.xz"])
    assert (calls[0] / "hymenoptera.tar").is_file()  # the largest first
    plan = (checkout / ".gpu" / "PLAN.txt").read_text()
    assert plan.count("bash tools/gpu_run.sh --unpack-only") == 2
    assert 'call 3: carry [".gpu/call-3"]' in plan
    assert plan.rstrip().endswith('bash tools/gpu_run.sh "$OUT", timeout_s 600')
    with tarfile.open(calls[0] / "hymenoptera.tar") as tar:  # laid out as the mirror is
        assert tar.getnames()[-1] == "hymenoptera_data/train/blob.bin"


def test_gpu_pack_says_when_one_item_cannot_travel(checkout, tmp_path):
    env = _fake_sources(tmp_path, {"hymenoptera": 600, "whl": 10, "cifar10-test-lossless": 10, "cifar10-train": 10,
                                   "mnist": 10, "cifar10-test": 10})
    code, output = _run(["bash", "tools/gpu_pack.sh"], env={**env, "GPU_CALL_LIMIT_MB": "0.5"}, cwd=checkout)
    assert code == 1
    assert "gpu_pack: hymenoptera is 0.6 MiB, more than one call can carry: 0.5 MiB less the working tree's" in output


# ------------------------------------------------------------------------------- gpu_run.sh
def test_gpu_run_unpacks_each_call_once_and_says_what_is_missing(tmp_path):
    gpu = tmp_path / "gpu"
    (gpu / "call-1").mkdir(parents=True)
    source = tmp_path / "src" / "MNIST" / "raw"
    source.mkdir(parents=True)
    (source / "f.gz").write_bytes(b"x")
    with tarfile.open(gpu / "call-1" / "mnist.tar", "w") as tar:
        tar.add(source, arcname="MNIST/raw")
    env = {"GPU_PACK_DIR": str(gpu), "PYTHON": sys.executable}
    code, output = _run(["bash", "tools/gpu_run.sh", "--unpack-only"], env=env)
    assert code == 0 and "unpacking" in output, output
    assert (gpu / "mirror" / "MNIST" / "raw" / "f.gz").read_bytes() == b"x"
    assert "still missing: cifar10-images/train cifar10-images/test cifar10-images/test-lossless" in output
    code, output = _run(["bash", "tools/gpu_run.sh", "--unpack-only"], env=env)
    assert code == 0 and "unpacking" not in output  # done once
    code, output = _run(["bash", "tools/gpu_run.sh", str(tmp_path / "out")], env=env)
    assert code == 3 and "the data packs are not all here (missing: cifar10-images/train" in output


def test_gpu_run_dry_mode_runs_the_benchmarks_and_a_notebook_on_the_cpu(mirror, tmp_path):
    """GPU_RUN_QUICK=1: everything gpu_run.sh does on the GPU machine, in quick mode on this CPU:
    both benchmarks at tiny sizes (so that they cannot rot), with their recipes, and one small
    notebook; then the results table."""
    if not (ROOT / "notebooks" / "01_tensors.ipynb").is_file():
        pytest.skip("notebooks/01_tensors.ipynb is not here")
    pytest.importorskip("nbclient", reason="the dry run executes a notebook with nbclient")
    if shutil.which("timeout") is None:
        pytest.skip("gpu_run.sh needs coreutils' timeout")
    out = tmp_path / "out"
    code, output = _run(["bash", "tools/gpu_run.sh", str(out)], timeout=400, env={
        "GPU_RUN_QUICK": "1", "GPU_RUN_NOTEBOOKS": "01_tensors", "GPU_PACK_DIR": str(tmp_path / "gpu"),
        "PYTHON": sys.executable, "COURSE_DATA_MIRROR": str(mirror), "CUDA_VISIBLE_DEVICES": ""})
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["01_tensors.ipynb", "benchmarks.txt", "gpu_run.log",
                                                     "results.jsonl", "results.md"]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["lesson"] == "gpu_run"]
    assert [r["run"] for r in steps] == ["benchmark LeNet-5 MNIST", "benchmark ResNet-9 CIFAR-10", "01_tensors"]
    assert all(r["status"] == "ok" and r["mode"] == "quick" for r in steps)
    runs = {r["run"]: r for r in records if r["lesson"] != "gpu_run"}
    # the ResNet benchmark: three ways, and the fast path without its data step; then its recipe,
    # scored with TTA on both test folders
    ways = [name.rsplit(" ", 1)[1] for name in runs if name.startswith("ResNet-9 CIFAR-10 ")]
    assert ways == ["fast", "fixed-batch", "plain-nw0", "plain-nw1"]
    assert all(r["images_per_s"] > 0 for name, r in runs.items() if name.startswith("ResNet-9 CIFAR-10 "))
    assert set(runs["ResNet-9 on CIFAR-10 (benchmark recipe)"]) >= {"test_lossless_acc", "test_acc", "train_s"}
    lenet = runs["LeNet-5 on MNIST (benchmark recipe)"]
    assert 0 <= lenet["test_acc"] <= 1 and lenet["train_s"] > 0
    assert len([name for name in runs if name.startswith("LeNet-5 MNIST ")]) == 2  # plain and fit (no compile)
    assert all(r["device"].startswith("cpu") for r in records if r["lesson"] != "gpu_run")
    table = (out / "results.md").read_text().splitlines()
    assert table[0].startswith("| lesson | run | device | mode |") and len(table) == 2 + len(records)
    benchmarks = (out / "benchmarks.txt").read_text()
    assert benchmarks.count("recipe: ") == 2 and "fast is" in benchmarks
    assert "all done in" in (out / "gpu_run.log").read_text()
