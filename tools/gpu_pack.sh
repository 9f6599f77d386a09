#!/usr/bin/env bash
# Pack what the GPU machine needs and has not: the data of lessons 05-07 and the Jupyter wheels
# (README.md, "Running on a GPU machine"). The device tool carries at most 64 MiB per call, the
# working tree included, so the packs are split over several calls: .gpu/call-1, .gpu/call-2, ...
# (each one folder to name in `carry`), and .gpu/PLAN.txt says which call carries which.
#
#   bash tools/gpu_pack.sh
#
# Environment: COURSE_DATA_MIRROR (default ../shared/data), GPU_WHEELS (default
# ../shared/wheels/device-py312), GPU_CALL_LIMIT_MB (64, in MiB), GPU_PACK_DIR (default .gpu).
# Packs already made are reused: delete .gpu/items to rebuild them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3 )}"
exec "$PY" - "$@" <<'EOF'
"""Make one archive per item, then put the items into as few calls as fit (first fit, largest first)."""
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

MIB = 1 << 20
mirror = Path(os.environ.get("COURSE_DATA_MIRROR") or "../shared/data")
wheels = Path(os.environ.get("GPU_WHEELS") or "../shared/wheels/device-py312")
limit = float(os.environ.get("GPU_CALL_LIMIT_MB") or 64) * MIB
out = Path(os.environ.get("GPU_PACK_DIR") or ".gpu")
# name -> (folder in the mirror, compress?). JPEG headers repeat from file to file: xz shrinks
# CIFAR-10's 47 MB of training JPEGs to 16 MB. Already-compressed files (.gz, photos) are only tarred.
ITEMS = {
    "mnist": ("MNIST", False),
    "cifar10-train": ("cifar10-images/train", True),
    "cifar10-test": ("cifar10-images/test", True),
    "cifar10-test-lossless": ("cifar10-images/test-lossless", True),
    "hymenoptera": ("hymenoptera_data", False),
}


def fail(message):
    sys.exit(f"gpu_pack: {message}")


def travelling_bytes() -> int:
    """What every call carries anyway: the tracked and untracked-not-ignored files."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True).stdout.split(b"\0")
    return sum(os.path.getsize(n) for n in names if n and os.path.isfile(n))


def make_item(name: str, folder: str, compress: bool) -> Path:
    source = mirror / folder
    if not source.is_dir():
        fail(f"{source} is missing: set COURSE_DATA_MIRROR to the course's data mirror")
    target = out / "items" / f"{name}.tar{'.xz' if compress else ''}"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        print(f"packing {source} -> {target} ...", flush=True)
        tmp = target.with_name(target.name + ".part")
        with tarfile.open(tmp, "w:xz", preset=6) if compress else tarfile.open(tmp, "w") as tar:
            tar.add(source, arcname=folder)
        tmp.replace(target)
    return target


if not (out.resolve().is_relative_to(Path.cwd()) and subprocess.run(
        ["git", "check-ignore", "-q", str(out / "x")]).returncode == 0):
    fail(f"{out} must be a folder of this checkout that git ignores (add '/{out}/' to .gitignore)")
if not any(wheels.glob("*.whl")):
    fail(f"no wheels in {wheels}: set GPU_WHEELS to the folder of the GPU machine's Jupyter wheels")
items = {name: make_item(name, folder, compress) for name, (folder, compress) in ITEMS.items()}
items["whl"] = wheels
size = {name: sum(f.stat().st_size for f in ([p] if p.is_file() else p.glob("*.whl"))) for name, p in items.items()}
tree = travelling_bytes()
room = limit * 63 / 64 - tree  # 1/64 to spare: the tree may grow between packing and calling
for name in sorted(items, key=size.get, reverse=True):
    if size[name] > room:
        fail(f"{name} is {size[name] / MIB:.1f} MiB, more than one call can carry: {limit / MIB:g} MiB less the "
             f"working tree's {tree / MIB:.1f} MiB leaves {room / MIB:.1f} MiB")
calls: list[list[str]] = []
for name in sorted(items, key=size.get, reverse=True):
    call = next((c for c in calls if sum(size[n] for n in c) + size[name] <= room), None)
    if call is None:
        calls.append(call := [])
    call.append(name)

for old in out.glob("call-*"):
    shutil.rmtree(old)
plan = [f"Working tree: {tree / MIB:.1f} MiB travels with every call; each call may carry {room / MIB:.1f} MiB more.",
        "Run these device-tool calls in this order, on one warm machine (see README.md):"]
for k, call in enumerate(calls, 1):
    folder = out / f"call-{k}"
    folder.mkdir(parents=True)
    for name in call:
        if name == "whl":
            shutil.copytree(items[name], folder / "whl")
        else:
            shutil.copy2(items[name], folder / items[name].name)
    last = k == len(calls)
    command = 'bash tools/gpu_run.sh "$OUT"' if last else "bash tools/gpu_run.sh --unpack-only"
    total = sum(size[n] for n in call)
    plan.append(f"  call {k}: carry [\"{folder}\"] ({total / MIB:.1f} MiB: {', '.join(call)}), "
                f"command: {command}{', timeout_s 600' if last else ''}")
(out / "PLAN.txt").write_text("\n".join(plan) + "\n")
print("\n".join(plan))
EOF
