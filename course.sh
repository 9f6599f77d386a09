#!/usr/bin/env bash
# One command for everything a learner or CI needs (see README.md):
#   bash course.sh lab    set up .venv (first time only) and open the course in JupyterLab
#   bash course.sh test   set up .venv the same way and run the whole test suite
#   bash course.sh setup  only set up .venv
#   bash course.sh visdom start a visdom server on 127.0.0.1:8097 that works offline
#   bash course.sh floor  check the oldest supported torch (requirements-floor.txt) in .venv-floor
#   bash course.sh site   build the course website into build/site, offline (site/README.md)
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

# The oldest torch and torchvision the course supports, with the rest of requirements.txt, in a
# second venv; then the unit tests and every notebook (quick mode) run there. Notebook outputs are
# not compared: error wording differs between torch versions, so only an unexpected raise fails.
floor() {
    local venv="$ROOT/.venv-floor"
    local stamp="$venv/.course-installed"
    if ! { [[ -f "$stamp" ]] && cmp -s "$stamp" <(cat requirements.txt requirements-floor.txt constraints.txt pyproject.toml); }; then
        [[ -x "$venv/bin/python" ]] || "$PY" -m venv "$venv"
        export PIP_CONSTRAINT="$ROOT/constraints.txt" PIP_BUILD_CONSTRAINT="$ROOT/constraints.txt"
        export PIP_DISABLE_PIP_VERSION_CHECK=1
        "$venv/bin/python" -m pip install -r requirements-floor.txt \
            -r <(grep -vE '^(torch|torchvision)[=<>~! ]' requirements.txt)
        "$venv/bin/python" -m pip install --no-deps -e .
        "$venv/bin/python" -m ipykernel install --sys-prefix --name python3 \
            --display-name "Python 3 (PyTorch course, oldest torch)" >/dev/null
        cat requirements.txt requirements-floor.txt constraints.txt pyproject.toml > "$stamp"
    fi
    export COURSE_QUICK=1
    local failed=0
    # addopts holds nbval's flags: the notebooks are run by floor_check instead.
    "$venv/bin/python" -m pytest -o addopts="" -p no:cacheprovider -p no:nbval \
        -n "${COURSE_TEST_WORKERS:-2}" --dist loadfile tests "$@" || failed=1
    "$venv/bin/python" tools/floor_check.py notebooks/*.ipynb || failed=1
    return "$failed"
}

# The website: Sphinx + MyST-NB render the committed notebooks (nothing is executed) into
# build/site; warnings are errors, then tools/site_links.py fails on any broken internal link.
# requirements-site.txt goes into .venv on top of requirements.txt, whose pins it may not move.
site() {
    setup
    local stamp="$VENV/.course-site-installed"
    if ! { [[ -f "$stamp" ]] && cmp -s "$stamp" <(cat requirements-site.txt requirements.txt constraints.txt); }; then
        export PIP_CONSTRAINT="$ROOT/constraints.txt" PIP_BUILD_CONSTRAINT="$ROOT/constraints.txt"
        export PIP_DISABLE_PIP_VERSION_CHECK=1
        "$VENV/bin/python" -m pip install -r requirements-site.txt -c <(grep -vE '^[[:space:]]*(#|$)' requirements.txt)
        cat requirements-site.txt requirements.txt constraints.txt > "$stamp"
    fi
    local start=$SECONDS
    rm -rf build/site build/site-doctrees
    "$VENV/bin/python" -m sphinx -b html -W --keep-going -n -d build/site-doctrees site build/site "$@"
    "$VENV/bin/python" tools/site_links.py build/site
    echo "site: built build/site in $((SECONDS - start)) s; open build/site/index.html"
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
        # nbval compares against the notebooks in the working tree: say so if they were edited.
        if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && ! git diff --quiet HEAD -- notebooks; then
            echo "note: $(git diff --name-only HEAD -- notebooks | xargs -n1 basename | paste -sd' ') differ" \
                 "from the last commit; nbval checks your copies ('git checkout -- notebooks' restores them)" >&2
        fi
        "$VENV/bin/ruff" check helpers tests benchmarks tools notebooks site
        exec "$VENV/bin/python" -m pytest -n "${COURSE_TEST_WORKERS:-2}" --dist loadfile "${@:2}" ;;
    visdom)
        setup
        exec "$VENV/bin/python" -m helpers.visdom_server "${@:2}" ;;
    floor)
        floor "${@:2}" ;;
    site)
        site "${@:2}" ;;
    *)
        echo "usage: bash course.sh {lab|test|setup|visdom|floor|site}" >&2
        exit 2 ;;
esac
