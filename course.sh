#!/usr/bin/env bash
# One command for everything a learner or CI needs (README.md; the details: site/setup.md):
#   bash course.sh lab     set up .venv (first time only) and open the course in JupyterLab
#   bash course.sh test    set up .venv the same way and run the whole test suite
#   bash course.sh setup   only set up .venv;  add --cpu (or set COURSE_TORCH=cpu) to any of these
#                          three the first time for torch's CPU build on Linux (about 190 MB, not 3 GB)
#   bash course.sh doctor  say what is wrong with this set-up, one line per problem with its fix
#   bash course.sh data    download every dataset the lessons use into data/ (to work offline later)
#   bash course.sh gpu     on a CUDA machine: run the lessons in full mode and the benchmarks, write the results
#   bash course.sh visdom  start a visdom server on 127.0.0.1:8097 that works offline
#   bash course.sh floor   check the oldest supported torch (requirements-floor.txt) in .venv-floor
#   bash course.sh site    build the course website into build/site, offline (site/README.md)
#
# COURSE_TORCH picks torch's build: cpu (PyTorch's CPU wheel index, Linux only; COURSE_TORCH_INDEX
# names a mirror of it) or pypi (PyPI's default: with CUDA on Linux, CPU/MPS on macOS and Windows).
# Unset, a .venv keeps the build it was set up with. tests/test_course_sh.py sources this file to
# test its functions with a faked machine: nothing runs below unless the file is executed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"
# The kernel's name as the committed notebooks carry it (metadata.kernelspec): JupyterLab rewrites a
# lesson's metadata when the kernel it starts has another name, so opening a lesson would change it.
KERNEL_NAME="python3"
KERNEL_DISPLAY_NAME="Python 3 (ipykernel)"

say() { echo "course.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# --- what this machine is (functions, so that the tests can fake them) -------------------------
os_name() { uname -s; }
machine() { uname -m; }
has_nvidia_driver() {
    command -v nvidia-smi >/dev/null 2>&1 || [[ -e /proc/driver/nvidia/version ]] \
        || compgen -G "/usr/lib/wsl/lib/libcuda.so*" >/dev/null  # WSL: the driver is Windows'
}
make_venv() { "$PY" -m venv "$1"; }
run_pip() { local venv=$1; shift; "$venv/bin/python" -m pip "$@"; }
# The installed version of a distribution in a venv ("" when absent), read without importing it.
installed_version() {
    [[ -x "$1/bin/python" ]] || return 0
    "$1/bin/python" -c 'import sys, importlib.metadata as m
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass' "$2" 2>/dev/null || true
}
# The version a requirements file pins with ==, e.g. `pinned_version torch requirements.txt` -> 2.14.1
pinned_version() { sed -nE "s/^$1==([^[:space:]#;]+).*/\1/p" "$2" | head -n1; }

# --- which build of torch -----------------------------------------------------------------------
# torch_build VENV: "cpu" or "pypi". COURSE_TORCH if set; else the build VENV was set up with; else
# the build of the torch already in VENV; else pypi. Prints one line of advice on the way.
torch_build() {
    local venv=$1 raw=${COURSE_TORCH:-} wanted have installed
    wanted=$(tr '[:upper:]' '[:lower:]' <<<"$raw" | tr -d '[:space:]')
    case "$wanted" in
        cpu|pypi) ;;
        default) wanted=pypi ;;
        "") wanted="" ;;
        *) die "COURSE_TORCH=$raw is not understood: use cpu (torch's CPU build) or pypi (PyPI's default build)" ;;
    esac
    installed=$(installed_version "$venv" torch)
    if [[ -n "$installed" ]]; then
        have=pypi
        [[ "$installed" == *+cpu ]] && have=cpu
    else
        have=$(cat "$venv/.course-torch" 2>/dev/null || true)
    fi
    if [[ "$wanted" == cpu && "$(os_name)" != Linux ]]; then
        say "COURSE_TORCH=cpu: on $(os_name) PyPI's torch has no CUDA libraries anyway; installing it from PyPI"
        wanted=pypi
    fi
    if [[ -n "$installed" && -n "$wanted" && "$wanted" != "$have" ]]; then
        local what="not the CPU build, which COURSE_TORCH=cpu asks for"
        [[ "$have" == cpu ]] && what="the CPU build, and COURSE_TORCH=$wanted asks for PyPI's"
        die "$(basename "$venv")/ holds torch $installed, $what. To switch, remove it and set up again:" \
            "rm -rf $(basename "$venv") && COURSE_TORCH=$wanted bash course.sh setup"
    fi
    echo "${wanted:-${have:-pypi}}"
}

# The one line for a Linux machine without an NVIDIA driver that is about to get PyPI's torch.
cpu_hint() {
    say "no NVIDIA driver found: PyPI's torch for Linux brings CUDA libraries (about 3 GB to download);" \
        "the CPU build is about 190 MB. For it, stop here (Ctrl-C) and run: bash course.sh setup --cpu"
}

# install_requirements VENV BUILD FILE...: torch and torchvision first when BUILD is cpu (from
# PyTorch's CPU index, pinned to the versions FILE pins), then every FILE from PyPI; the CPU
# builds already there satisfy the pins (2.14.1+cpu is a 2.14.1).
install_requirements() {
    local venv=$1 build=$2 file specs=() name version label=""
    shift 2
    if [[ "$build" == cpu ]]; then
        local index="${COURSE_TORCH_INDEX:-$TORCH_CPU_INDEX}"
        [[ "$(machine)" == x86_64 ]] && label="+cpu"  # the index's x86_64 wheels carry it; pin it, so
        for name in torch torchvision; do           # that no other index's CUDA build can match
            version=""
            for file in "$@"; do [[ -n "$version" ]] || version=$(pinned_version "$name" "$file"); done
            [[ -n "$version" ]] || die "no $name==VERSION line in $*"
            specs+=("$name==$version$label")
        done
        say "installing torch's CPU build (${specs[*]}) from $index"
        if ! run_pip "$venv" install --no-deps --index-url "$index" --timeout 30 --retries 2 "${specs[@]}"; then
            say "could not install ${specs[*]} from $index (pip's messages are above)."
            say "  Check the connection (behind a proxy, set HTTPS_PROXY), or set COURSE_TORCH_INDEX to a mirror of that index;"
            say "  or install PyPI's default build instead (with CUDA libraries on Linux, about 3 GB):" \
                "COURSE_TORCH=pypi bash course.sh setup"
            return 1
        fi
    fi
    local args=()
    for file in "$@"; do args+=(-r "$file"); done
    run_pip "$venv" install "${args[@]}"
}

register_kernel() {  # VENV DISPLAY_NAME: the notebooks' kernel, inside the venv only
    "$1/bin/python" -m ipykernel install --sys-prefix --name "$KERNEL_NAME" --display-name "$2" >/dev/null
}

# The first imports of torch and matplotlib are slow (matplotlib builds its font cache): do them
# here, said, rather than in a lesson's first cell, silent.
warm_imports() {
    "$1/bin/python" -c 'import matplotlib.pyplot, torch, torchvision' >/dev/null 2>&1 || true
}

pip_environment() {
    # visdom 0.2.4 builds with setuptools' pkg_resources (gone in setuptools 81): the
    # constraints file pins it for every install *and* for every isolated package build.
    export PIP_CONSTRAINT="$ROOT/constraints.txt" PIP_BUILD_CONSTRAINT="$ROOT/constraints.txt"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
}

# prepare_venv VENV DISPLAY_NAME FILE...: make VENV hold FILE's packages, the helpers (editable) and
# the kernel; done again only when one of the files, the torch build or the kernel's name changed.
prepare_venv() {
    local venv=$1 display=$2 build first=0 start=$SECONDS
    shift 2
    "$PY" -c 'import sys; assert sys.version_info >= (3, 10), "the course needs Python 3.10 or newer"' \
        || die "$PY is Python $("$PY" -c 'import platform; print(platform.python_version())'):" \
               "the course needs 3.10 or newer (3.11 recommended); name another with PYTHON=python3.11"
    build=$(torch_build "$venv")
    local stamp="$venv/.course-installed"
    if [[ -f "$stamp" ]] && cmp -s "$stamp" <(cat "$@" constraints.txt pyproject.toml; echo "torch: $build, kernel: $display"); then
        return 0
    fi
    [[ -x "$venv/bin/python" ]] || { say "creating $(basename "$venv")/ with $PY"; make_venv "$venv"; }
    pip_environment
    if [[ -z "$(installed_version "$venv" torch)" ]]; then
        first=1
        if [[ "$build" == pypi && -z "${COURSE_TORCH:-}" && "$(os_name)" == Linux ]] && ! has_nvidia_driver; then
            cpu_hint
        fi
        local what="torch is the big one (about 3 GB with its CUDA libraries): several minutes, the last few"
        what+=" of them silent while pip unpacks the packages."
        [[ "$build" == cpu ]] && what="torch's CPU build is about 190 MB: a minute or two on a fast connection."
        [[ "$(os_name)" == Linux ]] || what="a few minutes."
        say "installing the course's packages into $(basename "$venv")/ (first time only); $what"
    else
        say "$(basename "$venv")/ is out of date (the requirements, the torch build or the kernel's name changed): updating it"
    fi
    install_requirements "$venv" "$build" "$@"
    say "installing the helpers (editable) and registering the notebooks' kernel, \"$display\""
    run_pip "$venv" install -q --no-deps -e .
    register_kernel "$venv" "$display"
    echo "$build" > "$venv/.course-torch"
    if ((first)); then
        say "importing torch and matplotlib once (matplotlib builds its font cache: up to a minute)"
        warm_imports "$venv"
    fi
    { cat "$@" constraints.txt pyproject.toml; echo "torch: $build, kernel: $display"; } > "$stamp"
    say "$(basename "$venv")/ is ready (torch build: $build, $((SECONDS - start)) s)"
}

setup() { prepare_venv "$VENV" "$KERNEL_DISPLAY_NAME" requirements.txt; }

# The oldest torch and torchvision the course supports, with the rest of requirements.txt, in a
# second venv; then the unit tests and every notebook (quick mode) run there. Notebook outputs are
# not compared: error wording differs between torch versions, so only an unexpected raise fails.
floor() {
    local venv="$ROOT/.venv-floor" rest
    rest=$(mktemp)
    grep -vE '^(torch|torchvision)[=<>~! ]' requirements.txt > "$rest"
    # the same kernel name as .venv's: opening a lesson from either changes nothing
    prepare_venv "$venv" "$KERNEL_DISPLAY_NAME" requirements-floor.txt "$rest"
    rm -f "$rest"
    export COURSE_QUICK=1
    local failed=0
    # addopts holds nbval's flags: the notebooks are run by floor_check instead.
    "$venv/bin/python" -m pytest -o addopts="" -p no:cacheprovider -p no:nbval \
        -n "${COURSE_TEST_WORKERS:-2}" --dist loadfile tests "$@" || failed=1
    "$venv/bin/python" tools/floor_check.py notebooks/[0-9][0-9]_*.ipynb || failed=1
    return "$failed"
}

# The website: Sphinx + MyST-NB render the notebooks as saved in notebooks/ (nothing is executed)
# into build/site; warnings are errors, then tools/site_links.py fails on any broken internal link.
# requirements-site.txt goes into .venv on top of requirements.txt, whose pins it may not move.
site() {
    setup
    local stamp="$VENV/.course-site-installed"
    if ! { [[ -f "$stamp" ]] && cmp -s "$stamp" <(cat requirements-site.txt requirements.txt constraints.txt); }; then
        say "installing the website's tools (requirements-site.txt) into .venv/"
        pip_environment
        run_pip "$VENV" install -r requirements-site.txt -c <(grep -vE '^[[:space:]]*(#|$)' requirements.txt)
        cat requirements-site.txt requirements.txt constraints.txt > "$stamp"
    fi
    local start=$SECONDS
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && ! git diff --quiet HEAD -- notebooks; then
        say "note: the site shows the notebooks as saved in notebooks/, and" \
            "$(git diff --name-only HEAD -- notebooks | xargs -n1 basename | paste -sd' ') differ from the last commit"
    fi
    rm -rf build/site build/site-doctrees
    say "building the website (about a minute)"
    "$VENV/bin/python" -m sphinx -b html -W --keep-going -n -q -d build/site-doctrees site build/site "$@"
    "$VENV/bin/python" tools/site_links.py build/site
    echo "site: built build/site in $((SECONDS - start)) s; open build/site/index.html"
}

# `--cpu` right after lab, test or setup is COURSE_TORCH=cpu.
take_cpu_flag() {
    if [[ "${1:-}" == --cpu ]]; then
        export COURSE_TORCH=cpu
        return 0
    fi
    return 1
}

main() {
    local command=${1:-}
    shift || true
    case "$command" in
        lab|test|setup)
            take_cpu_flag "$@" && shift ;;
    esac
    case "$command" in
        setup)
            setup ;;
        lab)
            setup
            local root_flag=()
            [[ $(id -u) -eq 0 ]] && root_flag=(--allow-root)  # containers often run as root
            say "starting JupyterLab (a few seconds; the first start takes longer): it prints the address" \
                "to open and opens your browser. Stop it with Ctrl-C."
            exec "$VENV/bin/jupyter" lab --ServerApp.root_dir="$ROOT" --LabApp.default_url=/lab/tree/notebooks \
                "${root_flag[@]}" "$@" ;;
        test)
            setup
            export COURSE_QUICK=1
            # nbval compares against the notebooks in the working tree: say so if they were edited.
            if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && ! git diff --quiet HEAD -- notebooks; then
                echo "note: $(git diff --name-only HEAD -- notebooks | xargs -n1 basename | paste -sd' ') differ" \
                     "from the last commit; nbval checks your copies ('git checkout -- notebooks' restores them)" >&2
            fi
            "$VENV/bin/ruff" check helpers tests benchmarks tools notebooks site
            exec "$VENV/bin/python" -m pytest -n "${COURSE_TEST_WORKERS:-2}" --dist loadfile "$@" ;;
        doctor)
            # no set-up first: the doctor must also speak when .venv is missing or broken
            local python="$PY"
            [[ -x "$VENV/bin/python" ]] && python="$VENV/bin/python"
            exec "$python" helpers/doctor.py "$@" ;;
        data)
            setup
            exec "$VENV/bin/python" tools/get_data.py "$@" ;;
        gpu)
            setup
            PYTHON="$VENV/bin/python" exec bash tools/gpu_run.sh "$@" ;;
        visdom)
            setup
            exec "$VENV/bin/python" -m helpers.visdom_server "$@" ;;
        floor)
            floor "$@" ;;
        site)
            site "$@" ;;
        *)
            echo "usage: bash course.sh {lab|test|setup|doctor|data|gpu|visdom|floor|site}" \
                 "(lab, test and setup take --cpu: torch's CPU build)" >&2
            exit 2 ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
