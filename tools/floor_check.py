"""Run notebooks top to bottom in this environment's ``python3`` kernel; fail on a cell that raises.

The oldest-torch check (``bash course.sh floor``, site/setup.md, "Supported versions") runs every lesson
with this script in ``.venv-floor``. Outputs are not compared with the committed ones, because
error wording differs between torch versions: a notebook passes when no cell raises (a cell
tagged ``raises-exception`` may). A failing notebook stops at its first raising cell, as Run All
does, and is reported with that cell's index (nbval's "Cell N"), its first line and the error.

    COURSE_QUICK=1 .venv-floor/bin/python tools/floor_check.py notebooks/*.ipynb

Exit status 0 when every notebook ran through, 1 otherwise.
"""
import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError


def run_notebook(path: Path, timeout: int) -> str | None:
    """Run ``path`` in a fresh kernel; return None, or a description of the first failing cell."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.reset_execution_trackers()
    with client.setup_kernel():
        # The kernel must be this environment's, or the check would test another torch.
        probe = nbformat.v4.new_code_cell("import sys; print(sys.prefix)")
        client.execute_cell(probe, -1, store_history=False)
        kernel_prefix = "".join(out.get("text", "") for out in probe.outputs).strip()
        if kernel_prefix != sys.prefix:
            return (f"the python3 kernel runs in {kernel_prefix}, not in {sys.prefix}: register this "
                    f"environment's kernel with `{sys.executable} -m ipykernel install --sys-prefix --name python3`")
        for index, cell in enumerate(nb.cells):
            try:
                client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
                first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
                if isinstance(error, CellExecutionError):
                    detail = f"{error.ename}: {error.evalue}"
                else:
                    detail = f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
                return f"Cell {index}: {first_line}\n    {detail}"
    return None


def _check(path: Path, timeout: int) -> tuple[str | None, float]:
    start = time.perf_counter()
    return run_notebook(path, timeout), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds one cell may run (default 600)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run at once (default 2)")
    args = parser.parse_args(argv)
    print(f"floor check: torch {version('torch')}, torchvision {version('torchvision')}, "
          f"python {sys.version.split()[0]} in {sys.prefix}", flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = pool.map(_check, args.notebooks, [args.timeout] * len(args.notebooks))
        failed = 0
        for path, (failure, seconds) in zip(args.notebooks, results):
            print(f"{path.name}: {'OK' if failure is None else 'FAILED'} ({seconds:.0f} s)", flush=True)
            if failure is not None:
                failed += 1
                print("  " + "\n  ".join(failure.splitlines()), flush=True)
    print(f"notebooks: {len(args.notebooks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
