#!/usr/bin/env bash
# Make the bundle for a GPU machine without network, such as a cluster's compute node (site/gpu.md):
# the lessons' datasets and, when given, a folder of wheels, packed into .gpu/part-1, .gpu/part-2, ...
# Copy the checkout and those folders to the node; there, `bash tools/gpu_run.sh` unpacks them and runs.
#
#   bash tools/gpu_pack.sh [--wheels DIR] [--part-size MIB] [--out DIR]
#
# --wheels DIR    wheels for the node's Python, made with `pip download` (site/gpu.md gives the
#                 command); leave it out when the node's Python has what tools/gpu_requirements.txt lists
# --part-size MIB split the bundle into parts of at most MIB MiB (for a transfer that limits sizes);
#                 without it, one part
# --out DIR       where the bundle goes (default .gpu, which git ignores)
# The data come from COURSE_DATA_MIRROR when it is set, else from this checkout's data/ (fill that first
# with `bash course.sh data`). Archives are kept in DIR/items and reused by a later run (delete DIR to
# start afresh); the parts hold hard links to them where the file system allows, so the data are on
# disk once. .gpu/BUNDLE.txt lists what each part holds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3 )}"
exec "$PY" - "$@" <<'EOF'
"""One archive per dataset, then the archives and wheels into as few parts as fit (first fit, largest first)."""
import argparse
import os
import shutil
import sys
import tarfile
from pathlib import Path

MIB = 1 << 20
# name -> (compress?, alternative lists of folders or files inside the data folder): the first list
# whose every entry is there is packed; "a|b" means a or b, and both are packed when both are there.
# JPEG and PNG headers repeat from file to file: xz shrinks CIFAR-10's 47 MB of training JPEGs to
# 16 MB. Already-compressed files (.gz, photos, pickled pixels) are only tarred.
DATASETS = {
    "mnist": (False, [["MNIST/raw"]]),
    "fashion-mnist": (False, [["FashionMNIST/raw"]]),
    "cifar10": (True, [["cifar10-images/train", "cifar10-images/test-lossless|cifar10-images/test"],
                       ["cifar-10-batches-py"]]),
    "ants-bees": (False, [["hymenoptera_data"]]),
}
OPTIONAL = {"linreg": (False, [["linreg/data.csv"]])}  # lesson 03 makes data of the same kind without it


def fail(message):
    sys.exit(f"gpu_pack: {message}")


parser = argparse.ArgumentParser(prog="bash tools/gpu_pack.sh", description=__doc__)
parser.add_argument("--wheels", type=Path, default=os.environ.get("GPU_WHEELS") or None,
                    help="a folder of wheels for the node's Python (default: none)")
parser.add_argument("--part-size", type=float, help="MiB at most per part (default: one part)")
parser.add_argument("--out", type=Path, default=Path(os.environ.get("GPU_PACK_DIR") or ".gpu"))
args = parser.parse_args()
mirror = os.environ.get("COURSE_DATA_MIRROR", "").strip()
data = Path(mirror).expanduser() if mirror else Path(os.environ.get("COURSE_DATA_ROOT") or "data")
where = f"COURSE_DATA_MIRROR={data}" if mirror else f"{data}/"
out = args.out


def present(paths):
    return all(any((data / option).exists() for option in entry.split("|")) for entry in paths)


def existing(paths):
    return [option for entry in paths for option in entry.split("|") if (data / option).exists()]


def make_item(name: str, compress: bool, paths: list[str]) -> Path:
    target = out / "items" / f"{name}.tar{'.xz' if compress else ''}"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        print(f"gpu_pack: packing {name} from {where} ...", flush=True)
        tmp = target.with_name(target.name + ".part")
        with tarfile.open(tmp, "w:xz", preset=6) if compress else tarfile.open(tmp, "w") as tar:
            for path in existing(paths):
                tar.add(data / path, arcname=path)
        tmp.replace(target)
    return target


wheels = []
if args.wheels is not None:
    wheels = sorted(args.wheels.glob("*.whl"))
    if not wheels:
        fail(f"no wheels in {args.wheels}: make them with `pip download` (site/gpu.md), or leave --wheels out")
items: dict[str, Path] = {}
missing = []
for table, needed in ((DATASETS, True), (OPTIONAL, False)):
    for name, (compress, alternatives) in table.items():
        paths = next((p for p in alternatives if present(p)), None)
        if paths is not None:
            items[name] = make_item(name, compress, paths)
        elif needed:
            missing.append(f"{name} ({' or '.join(' + '.join(p) for p in alternatives)})")
if missing:
    fail(f"{where} lacks {', '.join(missing)}. Run `bash course.sh data` to download every dataset into "
         "data/, or set COURSE_DATA_MIRROR to a complete mirror")
items.update({f"wheels/{w.name}": w for w in wheels})
size = {name: path.stat().st_size for name, path in items.items()}

limit = args.part_size * MIB if args.part_size else float("inf")
for name in sorted(items, key=size.get, reverse=True):
    if size[name] > limit:
        fail(f"{name} is {size[name] / MIB:.1f} MiB, more than one part of {args.part_size:g} MiB can hold: "
             "choose a larger --part-size")
parts: list[list[str]] = []
for name in sorted(items, key=size.get, reverse=True):
    part = next((p for p in parts if sum(size[n] for n in p) + size[name] <= limit), None)
    if part is None:
        parts.append(part := [])
    part.append(name)


def place(source: Path, target: Path) -> None:
    """A hard link where the file system allows (no second copy on disk), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


for old in out.glob("part-*"):
    shutil.rmtree(old)
default_place = out.resolve() == (Path.cwd() / ".gpu").resolve()
lines = [f"The bundle for a GPU machine without network: data from {where}"
         + (f", wheels from {args.wheels}" if args.wheels else ", no wheels") + ".",
         f"Copy this checkout and {out}/part-* to the machine"
         + (" (the same paths), then run there:" if default_place else ", then run there:"),
         "  " + ("" if default_place else f"GPU_PACK_DIR=<where {out} is there> ") + "bash tools/gpu_run.sh OUTDIR", ""]
total = 0
for k, part in enumerate(parts, 1):
    folder = out / f"part-{k}"
    for name in part:
        place(items[name], folder / (name if name.startswith("wheels/") else items[name].name))
    part_size = sum(size[n] for n in part)
    total += part_size
    datasets = [n for n in part if not n.startswith("wheels/")]
    n_wheels = len(part) - len(datasets)
    holds = datasets + ([f"{n_wheels} wheel{'s' if n_wheels > 1 else ''}"] if n_wheels else [])
    lines.append(f"  {folder}: {part_size / MIB:.1f} MiB: {', '.join(holds)}")
lines.append(f"{len(parts)} part{'s' if len(parts) > 1 else ''}, {total / MIB:.1f} MiB in all.")
(out / "BUNDLE.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
