"""The website's parts that need no build: its hooks, the CJK font subset, the link scanner.

The build itself (`bash course.sh site`) and the browser check (tools/site_check.py) run in CI.
"""

import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "site" / "_ext"))
sys.path.insert(0, str(ROOT / "tools"))

from course_site import (  # noqa: E402
    fold_solutions,
    lessons,
    link_lessons,
    module_lesson_note,
    read_lesson,
    repository_url,
)
from site_font import WEIGHTS, cjk_chars, font_path, is_cjk, missing_chars, site_texts  # noqa: E402
from site_links import broken_links  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


# --- the repository's address, one place --------------------------------------------------------


def test_repository_url_comes_from_pyproject(tmp_path):
    """Bug caught: the site reading the repository address from anywhere but pyproject.toml."""
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://github.com/me/fork/"\n')
    assert repository_url(tmp_path) == "https://github.com/me/fork"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(ValueError, match="Repository"):
        repository_url(tmp_path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_colab_badge_and_install_cell_use_the_repository(path):
    """Bug caught: a notebook's Colab badge or install cell pointing at another repository."""
    repo = repository_url()
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    badge = (
        f"https://colab.research.google.com/github/{repo.removeprefix('https://github.com/')}"
        f"/blob/main/notebooks/{path.name}"
    )
    assert badge in "".join(cells[0]["source"]), f"the title cell's Colab badge must be {badge}"
    assert f"git+{repo}" in "".join(cells[1]["source"]), "Colab installs the helpers from this repository"


def test_readme_badges_use_the_repository():
    """Bug caught: a README Colab badge pointing at another repository."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    repo = repository_url().removeprefix("https://github.com/")
    for path in NOTEBOOKS:
        if f"](notebooks/{path.name})" in readme:  # the lesson is listed with a link
            assert f"colab.research.google.com/github/{repo}/blob/main/notebooks/{path.name}" in readme


# --- lessons, solutions, lesson links -----------------------------------------------------------


def test_lessons_are_found_by_file_name(tmp_path):
    """Bug caught: a notebook not named NN_name.ipynb taken for a lesson."""
    for name in ("02_b.ipynb", "01_a.ipynb", "notes.ipynb", "1_short.ipynb"):
        (tmp_path / "notebooks" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "notebooks" / name).write_text("{}")
    assert lessons(tmp_path) == {"01": "01_a", "02": "02_b"}


def _notebook(*cells, widgets=True):
    nb = nbformat.v4.new_notebook(cells=list(cells))
    if widgets:
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"a": {}}}}
    return nb


def test_solutions_fold_and_nothing_else_does():
    """Bug caught: solutions shown unfolded on the site, other cells folded, or saved widget state kept."""
    solution = nbformat.v4.new_code_cell(
        "ex1 = 2", metadata={"tags": ["solution"], "jupyter": {"source_hidden": True}}
    )
    plain = nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["other"]})
    nb = fold_solutions(_notebook(solution, plain))
    assert nb.cells[0].metadata["tags"] == ["solution", "hide-input"]
    assert nb.cells[0].metadata["mystnb"]["code_prompt_show"] == "Show the solution"
    assert nb.cells[1].metadata == {"tags": ["other"]}
    assert "widgets" not in nb.metadata, "saved widget state would make MyST-NB load widget JS"
    assert fold_solutions(nb).cells[0].metadata["tags"] == ["solution", "hide-input"], "fold once"


def test_read_lesson_folds_every_solution_of_a_real_lesson():
    """Bug caught: a real lesson's solution left unfolded, or the notebook file modified by the site build."""
    path = NOTEBOOKS[0]
    text = path.read_text(encoding="utf-8")
    solutions = sum(
        "solution" in c.metadata.get("tags", []) for c in nbformat.reads(text, as_version=4).cells
    )
    nb = read_lesson(text)
    folded = [c for c in nb.cells if "hide-input" in c.metadata.get("tags", [])]
    assert solutions > 0 and len(folded) == solutions
    assert path.read_text(encoding="utf-8") == text, "the notebook file is not changed"


PAGES = {"02": "02_autograd", "04": "04_mlp", "05": "05_cnn"}


@pytest.mark.parametrize(
    "line, expected",
    [
        ("Fit a model (lesson 05).", "Fit a model (lesson :doc:`05 </notebooks/05_cnn>`)."),
        (
            "(lessons 02 and 04)",
            "(lessons :doc:`02 </notebooks/02_autograd>` and :doc:`04 </notebooks/04_mlp>`)",
        ),
        ("(lessons 02-05)", "(lessons :doc:`02 </notebooks/02_autograd>`-:doc:`05 </notebooks/05_cnn>`)"),
        ("ResNet (lesson 07).", "ResNet (lesson 07)."),  # no page yet: plain text, not a broken link
        ("the 05 kernel, lesson 5", "the 05 kernel, lesson 5"),
    ],
)
def test_lesson_mentions_become_links(line, expected):
    """Bug caught: 'lesson 05' not linked, or linked to a page that does not exist."""
    assert link_lessons(line, PAGES) == expected


def test_api_page_documents_every_helpers_module():
    """Bug caught: a helpers module missing from the API page."""
    api = (ROOT / "site" / "api.md").read_text(encoding="utf-8")
    for module in sorted((ROOT / "helpers").glob("*.py")):
        if module.stem != "__init__":
            assert f".. automodule:: helpers.{module.stem}\n" in api, (
                f"site/api.md lacks helpers.{module.stem}"
            )


# --- the CJK font subset ------------------------------------------------------------------------


def test_cjk_ranges():
    """Bug caught: Chinese punctuation not counted as CJK, or Latin symbols counted."""
    assert all(map(is_cjk, "张量，、（")) and not any(map(is_cjk, "a·é→✓"))
    assert cjk_chars(["tensor (张量)", {"x": "y"}.get("x")]) == {"张", "量"}


@pytest.mark.parametrize("weight", WEIGHTS)
def test_font_subset_covers_every_chinese_character_of_the_course(weight):
    """Bug caught: a Chinese character of the course missing from the site's font subset (shown as a box)."""
    chars = cjk_chars(site_texts())
    assert len(chars) > 50, "the course's Chinese terms were not found"
    lacking = missing_chars(font_path(weight), chars)
    assert not lacking, (
        f"{font_path(weight).name} lacks {''.join(sorted(lacking))}: run "
        "`.venv/bin/python tools/site_font.py` and commit site/_static/fonts/"
    )


def test_missing_chars_sees_a_character_outside_the_subset():
    """Bug caught: missing_chars reporting nothing for a character the font lacks."""
    assert missing_chars(font_path(400), {"龘", "张"}) == {"龘"}


# --- the broken-link scanner --------------------------------------------------------------------


def test_broken_links_on_a_tiny_site(tmp_path):
    """Bug caught: the link scanner missing a missing file, a missing anchor or a link outside the site, or
    flagging good ones."""
    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    (site / "_static").mkdir()
    (site / "img.png").write_bytes(b"png")
    (site / "sub" / "index.html").write_text('<h1 id="top">x</h1>')
    (site / "_static" / "macros.html").write_text("<a href=\"{{ pathto('x') }}\">a theme template</a>")
    (site / "index.html").write_text(
        '<a href="sub/">folder</a> <a href="sub/index.html#top">anchor</a> <a href="#here" id="here">self</a>'
        '<img src="img.png"> <a href="https://example.org/x.html">external</a> <img src="data:,x">'
        '<a href="missing.html">1</a> <img src="gone.png?v=2"> <a href="sub/index.html#nope">2</a>'
        '<a href="#nowhere">3</a> <a href="../outside.html">4</a>'
    )
    assert sorted(broken_links(site)) == sorted(
        [
            "index.html: missing.html (no such file)",
            "index.html: gone.png?v=2 (no such file)",
            "index.html: sub/index.html#nope (no anchor #nope)",
            "index.html: #nowhere (no anchor #nowhere)",
            "index.html: ../outside.html (points outside the site)",
        ]
    )


def test_a_helper_without_a_lesson_gets_its_modules():
    """Bug caught: the API page's 'From helpers.x (lessons ...)' note wrong or invented."""
    import helpers.display

    assert module_lesson_note(helpers.display.bar_text) == "From :mod:`helpers.display` (lessons 02 and 04)."
    with_no_lesson = type(sys)("fake_module")
    with_no_lesson.__doc__ = "Plots.\n\nUsed in lesson 05, but not in the first paragraph."
    sys.modules["fake_module"] = with_no_lesson
    try:
        assert module_lesson_note(type("Thing", (), {"__module__": "fake_module"})) is None
    finally:
        del sys.modules["fake_module"]
