#!/usr/bin/env bash
# Everything the course measures on a CUDA GPU, in one command (site/gpu.md): the two benchmarks
# (each also trains its lesson's recipe and reports the test accuracy), then every lesson executed in
# full mode. OUTDIR receives the executed notebooks, benchmarks.txt, gpu_run.log, results.jsonl (one
# line per headline run: helpers.train.record_result writes them when COURSE_RESULTS names a file) and
# results.md, the same as a table.
#
#   bash course.sh gpu [OUTDIR]          a machine set up by course.sh: its .venv, its usual data
#   bash tools/gpu_run.sh [OUTDIR]       a machine without network, holding the bundle of tools/gpu_pack.sh
#                                        (.gpu/part-*): unpacks it, installs its wheels, runs
#   bash tools/gpu_run.sh --unpack-only  unpack the parts copied so far (when they arrive one by one)
#
# OUTDIR defaults to build/gpu-results. Environment: GPU_RUN_NOTEBOOKS (default: every lesson, e.g.
# "07_classic_nets 05_cnn"), GPU_RUN_BENCHMARKS=0 skips the benchmarks, GPU_RUN_BUDGET_S (a time limit
# in seconds for the whole run: a step that would start past it is skipped; default none),
# GPU_RUN_QUICK=1 is the dry run for a machine without a GPU (quick mode, the CPU, tiny benchmarks
# whose numbers measure nothing; it unpacks and installs nothing), GPU_PACK_DIR (default .gpu),
# PYTHON (default python3).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY="${PYTHON:-python3}"
QUICK="${GPU_RUN_QUICK:-0}"
[[ "$QUICK" == 1 ]] || QUICK=0
BUDGET_S="${GPU_RUN_BUDGET_S:-}"
NOTEBOOKS="${GPU_RUN_NOTEBOOKS:-$(cd notebooks && ls [0-9][0-9]_*.ipynb | sed 's/\.ipynb$//' | paste -sd' ')}"
GPU_DIR="${GPU_PACK_DIR:-$ROOT/.gpu}"
DATA="$GPU_DIR/data"
START=$SECONDS

say() { echo "[gpu_run $(date -u +%H:%M:%S), $((SECONDS - START)) s] $*"; }
die() { say "ERROR: $*"; exit "${2:-1}"; }
left() { [[ -n "$BUDGET_S" ]] && echo $((BUDGET_S - (SECONDS - START))) || echo 1000000; }
have_parts() { compgen -G "$GPU_DIR/part-*" >/dev/null; }

# Every archive in .gpu/part-*/ is unpacked once into .gpu/data (a stamp per archive marks it done).
unpack() {
    local archive stamp
    mkdir -p "$DATA"
    for archive in "$GPU_DIR"/part-*/*.tar "$GPU_DIR"/part-*/*.tar.xz; do
        [[ -f "$archive" ]] || continue
        stamp="$DATA/.unpacked-$(basename "$archive")"
        [[ -f "$stamp" ]] && continue
        say "unpacking $archive"
        "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
            "$archive" "$DATA" || die "could not unpack $archive"
        touch "$stamp"
    done
}

# The datasets the lessons need, in either layout (the mirror's, or data/ after a download).
missing_data() {
    [[ -d "$DATA/MNIST/raw" ]] || echo "MNIST"
    [[ -d "$DATA/FashionMNIST/raw" ]] || echo "FashionMNIST"
    [[ -d "$DATA/cifar10-images/train" || -d "$DATA/cifar-10-batches-py" ]] || echo "CIFAR-10"
    [[ -d "$DATA/hymenoptera_data/train" ]] || echo "ants/bees"
}

if [[ "${1:-}" == "--unpack-only" ]]; then
    have_parts || die "no bundle in $GPU_DIR (part-*): make it with bash tools/gpu_pack.sh" 3
    unpack
    missing=$(missing_data | paste -sd' ')
    say "unpacked so far: $(ls "$DATA" | paste -sd' '); still missing: ${missing:-nothing}"
    exit 0
fi

OUTDIR="${1:-${OUT:-build/gpu-results}}"
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd)
exec > >(tee -a "$OUTDIR/gpu_run.log") 2>&1
LOG_PID=$!
trap 'exec >&- 2>&-; wait "$LOG_PID"' EXIT  # the log is whole before the script returns

if [[ "$QUICK" == 1 ]]; then
    say "DRY RUN (GPU_RUN_QUICK=1): quick mode on this machine's CPU, benchmarks at tiny sizes. It shows that" \
        "the script and the benchmarks run; the images/s and accuracies it prints measure nothing."
fi

# The data: the bundle's, when one was copied here; else the course's usual places.
if [[ "$QUICK" == 0 ]] && have_parts; then
    unpack
    [[ -z "$(missing_data)" ]] || die "the bundle lacks $(missing_data | paste -sd' '): copy every part that
    $GPU_DIR/BUNDLE.txt lists (or make the bundle again with bash tools/gpu_pack.sh)" 3
    export COURSE_DATA_ROOT="$DATA" COURSE_DATA_MIRROR="$DATA"  # either layout, caches written there
    say "data: the bundle's, unpacked in $DATA"
else
    say "data: the course's usual places (data/, then COURSE_DATA_MIRROR=${COURSE_DATA_MIRROR:-(not set)}," \
        "then a download)"
fi

# The Python packages: the bundle's wheels, installed once into .gpu/site; else this Python's own.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
wheels=()
[[ "$QUICK" == 0 ]] && for wheel in "$GPU_DIR"/part-*/wheels/*.whl; do [[ -f "$wheel" ]] && wheels+=("$wheel"); done
if ((${#wheels[@]})); then
    if [[ ! -f "$GPU_DIR/site/.installed" ]]; then
        say "installing the bundle's ${#wheels[@]} wheels into $GPU_DIR/site"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$GPU_DIR/site" \
            "${wheels[@]}" || die "pip could not install the wheels"
        touch "$GPU_DIR/site/.installed"
    fi
    export PYTHONPATH="$ROOT:$GPU_DIR/site" PATH="$GPU_DIR/site/bin:$PATH"
fi
"$PY" -c 'import nbclient, nbformat, ipykernel, torch, torchvision' 2>/dev/null \
    || die "$PY cannot import nbclient, nbformat, ipykernel, torch and torchvision: run this through
    bash course.sh gpu, or bring wheels in the bundle (bash tools/gpu_pack.sh --wheels DIR; site/gpu.md)" 3

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
        || die "no CUDA device here: this measures the GPU (\`bash course.sh doctor\` says why CUDA is absent;
    GPU_RUN_QUICK=1 is the dry run)" 4
    DEVICE=cuda
    LENET_ARGS=(--device cuda --recipe)
    RESNET_ARGS=(--device cuda --recipe)
    NB_FLAGS=()
fi
export COURSE_RESULTS="$OUTDIR/results.jsonl" PYTHONUNBUFFERED=1
[[ -s "$COURSE_RESULTS" ]] && say "$COURSE_RESULTS holds earlier runs: this run's lines are added to them"
say "device: $("$PY" -c 'import sys, torch; from helpers.train import describe_device
print(describe_device(sys.argv[1]), "| torch", torch.__version__)' "$DEVICE")"
say "results in $OUTDIR${BUDGET_S:+; time budget $BUDGET_S s}"

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
    TEE_TO="$OUTDIR/benchmarks.txt" step "benchmark LeNet-5 MNIST" 900 \
        "$PY" benchmarks/bench_lenet_mnist.py "${LENET_ARGS[@]}"
    TEE_TO="$OUTDIR/benchmarks.txt" step "benchmark ResNet-9 CIFAR-10" 1800 \
        "$PY" benchmarks/bench_cifar_resnet.py "${RESNET_ARGS[@]}"
fi
for nb in $NOTEBOOKS; do  # an hour per lesson at most; a cell may take 30 minutes
    if [[ ! -f "notebooks/$nb.ipynb" ]]; then
        say "notebooks/$nb.ipynb: not found, skipped"; FAILED+=("$nb (missing)"); continue
    fi
    step "$nb" 3600 "$PY" tools/run_notebooks.py "${NB_FLAGS[@]}" --timeout 1800 --out "$OUTDIR" "notebooks/$nb.ipynb"
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
if [[ "$QUICK" == 1 ]]; then
    say "DRY RUN: the table above shows that every step ran; its numbers (tiny sizes, the CPU) measure nothing"
fi
if ((${#FAILED[@]})); then
    say "not all went well: ${FAILED[*]}"
    exit 1
fi
say "all done in $((SECONDS - START)) s"
