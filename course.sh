#!/usr/bin/env bash
# One command for everything a learner or CI needs (see README.md):
#   bash course.sh lab    set up .venv (first time only) and open the course in JupyterLab
#   bash course.sh test   set up .venv the same way and run the whole test suite
#   bash course.sh setup  only set up .venv
#   bash course.sh visdom start a visdom server on 127.0.0.1:8097 that works offline
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

setup() {
    local stamp="$VENV/.course-installed"
    if [[ -f "$stamp" ]] && cmp -s "$stamp" <(cat requirements.txt constraints.txt pyproject.toml); then
        return 0
    fi
    "$PY" -c 'import sys; assert sys.version_info >= (3, 10), "the course needs Python 3.10 or newer"'
    [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
    # visdom 0.2.4 builds with setuptools' pkg_resources (gone in setuptools 81): the
    # constraints file pins it for every install *and* for every isolated package build.
    export PIP_CONSTRAINT="$ROOT/constraints.txt" PIP_BUILD_CONSTRAINT="$ROOT/constraints.txt"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    "$VENV/bin/python" -m pip install -r requirements.txt
    "$VENV/bin/python" -m pip install --no-deps -e .
    # Register this environment as the notebooks' "python3" kernel, inside the venv only.
    "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 \
        --display-name "Python 3 (PyTorch course)" >/dev/null
    cat requirements.txt constraints.txt pyproject.toml > "$stamp"
}

case "${1:-}" in
    setup)
        setup ;;
    lab)
        setup
        root_flag=()
        [[ $(id -u) -eq 0 ]] && root_flag=(--allow-root)  # containers often run as root
        exec "$VENV/bin/jupyter" lab --ServerApp.root_dir="$ROOT" --LabApp.default_url=/lab/tree/notebooks \
            "${root_flag[@]}" "${@:2}" ;;
    test)
        setup
        export COURSE_QUICK=1
        "$VENV/bin/ruff" check helpers tests benchmarks tools notebooks
        exec "$VENV/bin/python" -m pytest -n "${COURSE_TEST_WORKERS:-2}" --dist loadfile "${@:2}" ;;
    visdom)
        setup
        exec "$VENV/bin/python" -m helpers.visdom_server "${@:2}" ;;
    *)
        echo "usage: bash course.sh {lab|test|setup|visdom}" >&2
        exit 2 ;;
esac
