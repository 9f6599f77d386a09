"""The GPU tools (lesson 07's measurements): tools/gpu_run.sh, in its dry mode, runs the benchmarks
and a notebook end to end on the CPU. Sizes are tiny: these check that the scripts work, not what
they measure. (tools/gpu_pack.sh's bundle: tests/test_gpu_bundle.py.)"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(args, timeout=120, env=None, cwd=ROOT):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    return result.returncode, result.stdout + result.stderr


def test_a_benchmark_refuses_a_subset_too_small_for_its_steps(mirror):
    """Bug caught: a benchmark timing fewer images than its steps need (wrapping round or a StopIteration)."""
    code, output = _run([sys.executable, "benchmarks/bench_cifar_resnet.py", "--device", "cpu", "--limit", "10",
                         "--batch-size", "8", "--steps", "2"])
    assert code == 2 and "--limit 10 holds fewer than (warmup + steps) * batch-size = 32 images" in output


# ------------------------------------------------------------------------------- gpu_run.sh
# (the bundle of tools/gpu_pack.sh and its unpacking: tests/test_gpu_bundle.py)
def test_gpu_run_dry_mode_runs_the_benchmarks_and_a_notebook_on_the_cpu(mirror, tmp_path):
    """Bug caught: gpu_run.sh or its benchmarks rotting unseen, since they otherwise run only on a GPU
    machine.
    GPU_RUN_QUICK=1: everything gpu_run.sh does on the GPU machine, in quick mode on this CPU:
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
    log = (out / "gpu_run.log").read_text()
    assert "all done in" in log
    assert log.count("measure nothing") == 2, "the dry run says, first and last, that its numbers mean nothing"
    assert not (tmp_path / "gpu").exists(), "the dry run unpacks and installs nothing"
