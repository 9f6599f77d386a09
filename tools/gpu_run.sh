#!/usr/bin/env bash
# Everything the course measures on a GPU, in one run of under 10 minutes (README.md, "Running on
# a GPU machine"): unpack the data packs of tools/gpu_pack.sh, install the Jupyter wheels, run the
# benchmarks (with the lessons' recipes), execute lessons 07, 05 and 06 in full mode on CUDA, and
# write the executed notebooks, the benchmarks' output, results.jsonl (helpers.train.record_result)
# and results.md (a table of it) to OUTDIR.
#
#   bash tools/gpu_run.sh --unpack-only     the earlier calls: unpack the packs carried so far
#   bash tools/gpu_run.sh OUTDIR            the last call (or OUT=dir bash tools/gpu_run.sh)
#
# Environment: GPU_RUN_QUICK=1 is the dry run for a machine without a GPU: quick mode, the CPU
# allowed, tiny benchmarks, data from COURSE_DATA_MIRROR when no packs were unpacked, and no wheel
# install when nbclient already imports. GPU_RUN_NOTEBOOKS (default "07_classic_nets 05_cnn
# 06_regularization"), GPU_RUN_BENCHMARKS=0 skips the benchmarks, GPU_RUN_BUDGET_S (default 540:
# every step's timeout comes out of it), GPU_PACK_DIR (default .gpu), PYTHON (default python3).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY="${PYTHON:-python3}"
QUICK="${GPU_RUN_QUICK:-0}"
[[ "$QUICK" == 1 ]] || QUICK=0
BUDGET_S="${GPU_RUN_BUDGET_S:-540}"
NOTEBOOKS="${GPU_RUN_NOTEBOOKS:-07_classic_nets 05_cnn 06_regularization}"
GPU_DIR="${GPU_PACK_DIR:-$ROOT/.gpu}"
MIRROR="$GPU_DIR/mirror"
START=$SECONDS

say() { echo "[gpu_run $(date -u +%H:%M:%S), $((SECONDS - START)) s] $*"; }
die() { say "ERROR: $*"; exit "${2:-1}"; }
left() { echo $((BUDGET_S - (SECONDS - START))); }

# Every archive in .gpu/call-*/ is unpacked once into .gpu/mirror (ignored files stay on a warm
# machine between calls; a stamp per archive marks it done). Wheels stay where they are.
unpack() {
    local archive stamp
    for archive in "$GPU_DIR"/call-*/*.tar "$GPU_DIR"/call-*/*.tar.xz; do
        [[ -f "$archive" ]] || continue
        stamp="$MIRROR/.unpacked-$(basename "$archive")"
        [[ -f "$stamp" ]] && continue
        say "unpacking $archive"
        "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
            "$archive" "$MIRROR" || die "could not unpack $archive"
        touch "$stamp"
    done
}

# The data each lesson needs, as the mirror lays it out.
NEEDED=(MNIST/raw cifar10-images/train cifar10-images/test cifar10-images/test-lossless hymenoptera_data/train)
missing_data() {
    local path
    for path in "${NEEDED[@]}"; do [[ -d "$MIRROR/$path" ]] || echo "$path"; done
}

mkdir -p "$MIRROR"
unpack
if [[ "${1:-}" == "--unpack-only" ]]; then
    missing=$(missing_data | paste -sd' ')
    say "unpacked so far: $(ls "$MIRROR" | paste -sd' '); still missing: ${missing:-nothing}"
    exit 0
fi

OUTDIR="${1:-${OUT:-}}"
[[ -n "$OUTDIR" ]] || die "usage: bash tools/gpu_run.sh OUTDIR (or set OUT), or --unpack-only" 2
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd)
exec > >(tee -a "$OUTDIR/gpu_run.log") 2>&1
LOG_PID=$!
trap 'exec >&- 2>&-; wait "$LOG_PID"' EXIT  # the log is whole before the script returns

# The data: the unpacked packs, or (dry run only) the mirror already set.
if [[ -z "$(missing_data)" ]]; then
    export COURSE_DATA_MIRROR="$MIRROR"
elif [[ "$QUICK" == 1 && -n "${COURSE_DATA_MIRROR:-}" ]]; then
    say "dry run: data from COURSE_DATA_MIRROR=$COURSE_DATA_MIRROR"
else
    die "the data packs are not all here (missing: $(missing_data | paste -sd' ')). Make them with
    bash tools/gpu_pack.sh, then run the calls .gpu/PLAN.txt lists, in order, on one warm machine." 3
fi

# The Jupyter stack: from the wheels carried in .gpu/call-*/whl, into /tmp/site.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [[ "$QUICK" == 1 ]] && "$PY" -c 'import nbclient, nbformat, ipykernel' 2>/dev/null; then
    say "dry run: nbclient already imports, no wheels installed"
else
    wheels=("$GPU_DIR"/call-*/whl/*.whl)
    [[ -f "${wheels[0]}" ]] || die "no wheels in .gpu/call-*/whl: run bash tools/gpu_pack.sh and carry its calls" 3
    say "installing ${#wheels[@]} wheels into /tmp/site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "${wheels[@]}" || die "pip could not install the wheels"
    export PYTHONPATH="$ROOT:/tmp/site" PATH="/tmp/site/bin:$PATH"
fi

if [[ "$QUICK" == 1 ]]; then
    export COURSE_QUICK=1
    DEVICE=$("$PY" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
    LENET_ARGS=(--device "$DEVICE" --limit 2048 --epochs 1 --recipe --recipe-epochs 1 --recipe-limit 2048)
    RESNET_ARGS=(--device "$DEVICE" --limit 64 --batch-size 8 --steps 1 --warmup 1 --epochs 1 --width 4
                 --workers 1 --recipe --recipe-epochs 1 --recipe-limit 64)
    NB_FLAGS=(--quick)
else
    export COURSE_QUICK=0
    "$PY" -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null \
        || die "no CUDA device here: this script measures the GPU (GPU_RUN_QUICK=1 is the dry run)" 4
    DEVICE=cuda
    LENET_ARGS=(--device cuda --recipe)
    RESNET_ARGS=(--device cuda --recipe)
    NB_FLAGS=()
fi
export COURSE_RESULTS="$OUTDIR/results.jsonl" PYTHONUNBUFFERED=1
say "device: $("$PY" -c 'import sys, torch; from helpers.train import describe_device
print(describe_device(sys.argv[1]), "| torch", torch.__version__)' "$DEVICE")"
say "budget ${BUDGET_S} s; results in $OUTDIR"

# step NAME CAP_S COMMAND...: run with a timeout of CAP_S, or of what is left of the budget;
# its output also goes to the file TEE_TO names, if any.
FAILED=()
step() {
    local name=$1 cap=$2 limit status
    shift 2
    limit=$(left)
    ((limit > cap)) && limit=$cap
    if ((limit < 20)); then
        say "$name: skipped, the time budget is spent"; FAILED+=("$name (skipped)"); return
    fi
    say "$name: starting (timeout ${limit} s)"
    local begin=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "${TEE_TO:-/dev/null}"
    status=${PIPESTATUS[0]}
    local took=$((SECONDS - begin))
    case $status in
        0) say "$name: done in ${took} s" ;;
        124|137) say "$name: TIMED OUT after ${took} s"; FAILED+=("$name (timeout)") ;;
        *) say "$name: FAILED (exit $status) after ${took} s"; FAILED+=("$name (exit $status)") ;;
    esac
    printf '{"lesson": "%s", "run": "%s", "device": "%s", "mode": "%s", "seconds": %d, "status": "%s"}\n' \
        "gpu_run" "$name" "$DEVICE" "$([[ $QUICK == 1 ]] && echo quick || echo full)" "$took" \
        "$([[ $status == 0 ]] && echo ok || echo "exit $status")" >> "$COURSE_RESULTS"
}

if [[ "${GPU_RUN_BENCHMARKS:-1}" == 1 ]]; then
    TEE_TO="$OUTDIR/benchmarks.txt" step "benchmark LeNet-5 MNIST" 120 \
        "$PY" benchmarks/bench_lenet_mnist.py "${LENET_ARGS[@]}"
    TEE_TO="$OUTDIR/benchmarks.txt" step "benchmark ResNet-9 CIFAR-10" 180 \
        "$PY" benchmarks/bench_cifar_resnet.py "${RESNET_ARGS[@]}"
fi
for nb in $NOTEBOOKS; do  # the new lesson first: 300 s at most, the others 150 s, all within the budget
    if [[ ! -f "notebooks/$nb.ipynb" ]]; then
        say "notebooks/$nb.ipynb: not found, skipped"; FAILED+=("$nb (missing)"); continue
    fi
    cap=150
    [[ "$nb" == 07_* ]] && cap=300
    step "$nb" "$cap" "$PY" tools/run_notebooks.py "${NB_FLAGS[@]}" --timeout 240 --out "$OUTDIR" "notebooks/$nb.ipynb"
done

"$PY" - "$COURSE_RESULTS" "$OUTDIR/results.md" <<'EOF'
"""results.jsonl -> a markdown table, one row per run; the columns are every key any run has."""
import json
import sys
from pathlib import Path

rows = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines() if line.strip()]
keys = list(dict.fromkeys(k for row in rows for k in row))
table = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
table += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
Path(sys.argv[2]).write_text("\n".join(table) + "\n")
print("\n".join(table))
EOF
say "wrote $(ls "$OUTDIR" | paste -sd' ')"
if ((${#FAILED[@]})); then
    say "not all went well: ${FAILED[*]}"
    exit 1
fi
say "all done in $((SECONDS - START)) s"
