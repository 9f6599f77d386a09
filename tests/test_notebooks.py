"""Every lesson keeps the course's fixed shape (nbval, in the same run, executes them)."""
import json
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
    assert sum("check(" in s for s in sources) >= 3, "exercises need checking cells"
    for c in code:
        for out in c.get("outputs", []):
            assert out["output_type"] != "error", "a committed cell raised: use helpers.check.expect_error"
