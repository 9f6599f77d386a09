"""Execute lessons top to bottom and save them with their outputs (what gets committed).

    .venv/bin/python tools/run_notebooks.py notebooks/02_autograd.ipynb     # full mode, in place
    .venv/bin/python tools/run_notebooks.py --quick --out /tmp/q notebooks/*.ipynb

Full mode is the default (committed notebooks hold a full-mode run). The kernel is the
course's ``python3``; it runs in notebooks/ as in JupyterLab, and widget state is saved so
viewers without a kernel can draw the widgets. No per-cell timestamps are kept (nbclient's
``metadata.execution``), so that a rerun changes only what the cells print, and numbers are saved
as JupyterLab saves them (:func:`js_numbers`), so that opening and saving a lesson there changes nothing. COURSE_DATA_MIRROR defaults to ../shared/data
when that folder exists.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def js_numbers(value):
    """``value`` with every integral float made an int, in place where it can be: JupyterLab holds a
    notebook as JavaScript, which has one kind of number, so its save writes the widget state's
    ``5.0`` as ``5``. Saved this way already, a lesson opened and saved in JupyterLab stays the same."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = js_numbers(item)
    elif isinstance(value, list):
        value[:] = [js_numbers(item) for item in value]
    return value


def run(path: Path, out_dir: Path | None, quick: bool, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    os.environ["COURSE_QUICK"] = "1" if quick else "0"
    start = time.perf_counter()
    target = (out_dir / path.name) if out_dir else path
    try:
        # no per-cell timestamps (record_timing): they would change every line of a lesson's diff
        NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True, record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:  # a cell that fails or times out still leaves the run so far to diagnose
        for cell in nb.cells:
            cell.metadata.pop("execution", None)  # timestamps an earlier run recorded
        js_numbers(nb)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--quick", action="store_true", help="quick mode (COURSE_QUICK=1)")
    parser.add_argument("--out", type=Path, help="write here instead of in place")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    mirror = ROOT.parent / "shared" / "data"
    if "COURSE_DATA_MIRROR" not in os.environ and mirror.is_dir():
        os.environ["COURSE_DATA_MIRROR"] = str(mirror)
    for path in args.notebooks:
        seconds = run(path.resolve(), args.out, args.quick, args.timeout)
        print(f"{path.name}: {seconds:.0f} s ({'quick' if args.quick else 'full'} mode)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
