"""Every lesson keeps the course's fixed shape (nbval, in the same run, executes them)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
COLAB_URL = "https://colab.research.google.com/github/open-pytorch-course/pytorch-course/blob/main/notebooks/"


def test_the_first_lessons_exist():
    names = [nb.stem for nb in NOTEBOOKS]
    assert names[:4] == ["01_tensors", "02_autograd", "03_linear_logistic_softmax", "04_mlp_backprop"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_lesson_shape(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    cells = nb["cells"]
    sources = ["".join(c["source"]) for c in cells]
    title = sources[0]
    assert cells[0]["cell_type"] == "markdown" and title.startswith("# ")
    assert COLAB_URL + path.name in title, "the badge must open this very notebook"
    assert 'if "google.colab" in sys.modules:' in sources[1], "cell 2 installs the helpers in Colab"
    assert "helpers.setup(" in sources[2], "cell 3 is the set-up cell"
    headings = [line for s, c in zip(sources, cells) if c["cell_type"] == "markdown"
                for line in s.splitlines() if line.startswith("## ")]
    for needed in ("Pitfalls", "Summary", "Exercises"):
        assert any(needed in h for h in headings), f"no '## {needed}' section"
    code = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    counts = [c["execution_count"] for c in code]
    assert None not in counts and counts == sorted(counts), "commit a real top-to-bottom run"
    assert sum("checks.ex" in s for s in sources) >= 3, "exercises need checking cells"
    for c in code:
        for out in c.get("outputs", []):
            assert out["output_type"] != "error", "a committed cell raised: use helpers.check.expect_error"


# ------------------------------------------------------------------------------ exercises
EXERCISE_HEADING = re.compile(r"^\*\*Exercise (\d+)\b", re.MULTILINE)


def _source(cell) -> str:
    return "".join(cell["source"])


def _text(cell) -> str:
    """Everything a code cell printed or displayed as text, in its committed outputs."""
    parts = []
    for out in cell.get("outputs", []):
        parts.append("".join(out.get("text", "")))
        parts.append("".join(out.get("data", {}).get("text/plain", "")))
        if out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "".join(parts)


def exercises(nb) -> dict[int, list]:
    """Exercise number -> the cells from its heading up to the next exercise or section."""
    found, current = {}, None
    for cell in nb["cells"]:
        src = _source(cell)
        heading = EXERCISE_HEADING.search(src) if cell["cell_type"] == "markdown" else None
        if heading:
            current = found.setdefault(int(heading.group(1)), [])
        elif cell["cell_type"] == "markdown" and src.lstrip().startswith("## "):
            current = None
        if current is not None:
            current.append(cell)
    return found


def is_solution(cell) -> bool:
    return "solution" in cell["metadata"].get("tags", [])


CHECK_CALL = re.compile(r"^checks\.ex(\d+)\((.*)\)$", re.S)


def _code_only(cell) -> str:
    """A code cell's source without its comment lines."""
    return "\n".join(line for line in _source(cell).splitlines() if not line.lstrip().startswith("#")).strip()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_every_exercise_starts_unanswered_and_has_a_hidden_solution_that_passes(path):
    """The placeholder path says "not answered yet", the folded solution prints the model
    answer's ✓ lines, and the check cell under the question is one call whose body (and its
    expected values) sits in helpers/exercises/, out of the learner's sight.

    nbval (same run) re-executes every notebook and compares these committed outputs, so
    both paths are tested for real.
    """
    nb = json.loads(path.read_text(encoding="utf-8"))
    lesson = path.stem[:2]
    setup = _source(nb["cells"][2])
    assert f"from helpers.exercises import lesson{lesson} as checks" in setup, "the set-up cell imports the checks"
    found = exercises(nb)
    assert found and sorted(found) == list(range(1, len(found) + 1)), f"exercises numbered 1..n: {sorted(found)}"
    for number, cells in found.items():
        where = f"{path.stem} Exercise {number}"
        code = [c for c in cells if c["cell_type"] == "code"]
        words = [c for c in cells if c["cell_type"] == "markdown" and "<details>" in _source(c)]
        answer = [c for c in cells if c["cell_type"] == "markdown" and "Your answer" in _source(c)]
        assert code or words, f"{where}: neither a code exercise nor a question with a model answer"
        assert len(words) == len(answer), f"{where}: each written question needs a 'Your answer' cell"
        if not code:
            continue
        checks = [c for c in code if not is_solution(c) and CHECK_CALL.match(_code_only(c))]
        solutions = [c for c in code if is_solution(c)]
        assert len(checks) == 1, f"{where}: one check cell, a single call checks.ex{number}(...)"
        assert CHECK_CALL.match(_code_only(checks[0])).group(1) == str(number), f"{where}: checks the wrong exercise"
        assert len(solutions) == 1, f"{where}: one solution cell (tagged 'solution')"
        first_check = code.index(checks[0])
        placeholders = [c for c in code[:first_check] if "..." in _source(c)]
        assert placeholders, f"{where}: the learner's cell needs a `...` placeholder"
        assert code.index(solutions[0]) > first_check, f"{where}: the solution comes after its check"
        for c in checks + solutions:
            assert all(o["output_type"] != "execute_result" for o in c.get("outputs", [])), \
                f"{where}: a check shows an Out: value (end the cell with the call, which returns None)"
        out = _text(checks[0])
        assert "not answered yet" in out and "✓" not in out, \
            f"{where}: the check, run on the placeholder, must say 'not answered yet':\n{out}"
        meta = solutions[0]["metadata"]
        assert meta.get("jupyter", {}).get("source_hidden") is True, f"{where}: hide the solution (JupyterLab)"
        assert meta.get("cellView") == "form" and _source(solutions[0]).startswith("#@title"), \
            f"{where}: hide the solution (Colab)"
        assert f"checks.ex{number}.model_answer(" in _source(solutions[0]), \
            f"{where}: the solution must call checks.ex{number}.model_answer(...)"
        out = _text(solutions[0])
        assert out.startswith(f"The model answer to Exercise {number}, checked:\n") and "✓" in out \
            and "not answered" not in out and "Error" not in out, f"{where}: the solution must pass:\n{out}"


# ----------------------------------------------------------------- outputs that are portable
SCI = re.compile(r"(?<![\w.])[-+]?\d(?:\.\d+)?e-(\d+)\b")
LONG_DECIMAL = re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?![\w.])")


def _significant(number: str) -> int:
    digits = number.lstrip("+-").replace(".", "").lstrip("0")
    return len(digits)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_compared_outputs_hold_no_floating_point_noise(path):
    """A value at 1e-12 or printed to 17 digits differs between CPUs, BLAS builds and GPUs,
    so nbval would fail elsewhere. Print what the mathematics guarantees instead. A cell whose
    tiny or long numbers are exact (an IEEE fact, a printed magnitude) says why in a comment
    ``# PORTABLE_OUTPUT: <reason>``."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    noisy = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code" or re.search(r"NBVAL_IGNORE_OUTPUT|PORTABLE_OUTPUT: \S", _source(cell)):
            continue
        text = _text(cell)
        tiny = [m.group(0) for m in SCI.finditer(text) if int(m.group(1)) > 9]
        long = [m.group(0) for m in LONG_DECIMAL.finditer(text) if _significant(m.group(0)) > 8]
        if tiny or long:
            noisy.append(f"cell {i}: {(tiny + long)[:3]}")
    assert not noisy, "outputs that nbval compares hold floating-point noise:\n" + "\n".join(noisy)


# ------------------------------------------------------------------- a cell that hangs
def test_every_notebook_cell_runs_under_a_timeout():
    """Bug caught: no nbval cell timeout, so a hung cell (oneDNN's channels_last on an AVX2 CPU)
    held CI until it was killed."""
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    addopts = re.search(r"^addopts = (.*)$", pyproject, re.M).group(1)
    timeout = re.search(r"--nbval-cell-timeout=(\d+)", addopts)
    assert timeout and 60 <= int(timeout.group(1)) <= 600


def test_a_hung_cell_fails_and_is_named(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("import time\ntime.sleep(120)")]
    for i, cell in enumerate(nb.cells, start=1):
        cell.execution_count = i
    nbformat.write(nb, tmp_path / "hangs.ipynb")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "--nbval",
                           "--nbval-current-env", "--nbval-cell-timeout=5", str(tmp_path / "hangs.ipynb")],
                          cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "1 failed, 1 passed" in done.stdout
    assert "FAILED" in done.stdout and "hangs.ipynb::Cell 1 " in done.stdout  # the cell, by its number
    assert "Cell 1: Timeout of 5 seconds exceeded" in done.stdout and "time.sleep(120)" in done.stdout
