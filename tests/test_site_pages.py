"""The README and the website's pages: a short front page, reference pages that exist, are linked and
are in the sidebar, words that speak to the course's users only, and the site's hooks for output
order and the API page. (The build and the browser check run in CI: `bash course.sh site`,
tools/site_check.py.)"""
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "site" / "_ext"))
sys.path.insert(0, str(ROOT / "tools"))

from course_site import merge_adjacent_streams, module_table, read_lesson  # noqa: E402
from site_check import page_plan, site_pages  # noqa: E402

README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = sorted(p for p in (ROOT / "site").glob("*.md") if p.name != "README.md")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


# --- the README ---------------------------------------------------------------------------------
def test_readme_front_page_is_short_and_starts_with_the_lessons_and_the_two_commands():
    """Bug caught: a README grown into a manual, where a newcomer must scroll past versions and GPU
    recipes to find what the course is and how to start."""
    words = len(re.sub(r"\(https?://[^)]*\)|\([^)]*\.ipynb\)", "", README).split())
    assert words < 800, f"the README has {words} words: move reference parts into site/ pages"
    headings = re.findall(r"^#+ (.+)$", README, re.M)
    assert headings[:5] == ["An open PyTorch course: from tensors to ResNet", "Two commands", "In Colab", "Help",
                            "More"]
    assert README.index("| 01 |") < README.index("bash course.sh lab") < README.index("## In Colab")
    assert "bash course.sh doctor" in README


def test_readme_links_every_reference_page_and_each_exists():
    """Bug caught: a reference page the README no longer links (so a reader never finds it), or a
    README link to a page that does not exist."""
    linked = set(re.findall(r"\]\((site/[^)#]+\.md)", README))
    assert linked == {f"site/{p.name}" for p in PAGES if p.stem != "index"}


# --- the website's pages ------------------------------------------------------------------------
def test_every_page_is_in_the_sidebar_in_reading_order():
    """Bug caught: a page left out of the toctree (an orphan Sphinx warns about, no way to reach it)
    or a toctree entry without its page."""
    names = [p.stem for p in NOTEBOOKS]
    pages = site_pages(names)
    assert pages[0] == "index.html"
    assert pages[1:1 + len(names)] == [f"notebooks/{n}.html" for n in names], "the lessons come first"
    others = pages[1 + len(names):]
    assert sorted(others) == sorted(f"{p.stem}.html" for p in PAGES if p.stem != "index")
    assert len(set(pages)) == len(pages)


def test_site_check_expects_each_pages_neighbours(monkeypatch):
    """Bug caught: the browser check expecting the last lesson's "next" link to go to the API page,
    after pages were added between the lessons and the API."""
    import site_check

    monkeypatch.setattr(site_check, "solution_count", lambda path: 2)
    index = "```{toctree}\n:glob:\n\nnotebooks/[0-9][0-9]_*\n```\n\n```{toctree}\n:hidden:\n\nsetup\napi\n```\n"
    plan = dict(page_plan(["01_a", "02_b"], "me/course", index))
    assert list(plan) == ["index.html", "notebooks/01_a.html", "notebooks/02_b.html", "setup.html", "api.html"]
    assert plan["notebooks/02_b.html"]["next"] == "setup.html" and plan["notebooks/02_b.html"]["prev"] == (
        "notebooks/01_a.html")
    assert plan["api.html"]["prev"] == "setup.html" and "next" not in plan["api.html"]
    assert plan["notebooks/01_a.html"]["colab"].endswith("/me/course/blob/main/notebooks/01_a.ipynb")
    assert "lesson" not in plan["setup.html"]


LENDING = re.compile(r"\blent\b|\blend|borrow|\bsessions?\b|idle timeout|warm machine|device tool|"
                     r"travels? per call|per call\b|64 MiB", re.I)


@pytest.mark.parametrize("path", [ROOT / "README.md", ROOT / "course.sh", ROOT / "tools" / "gpu_pack.sh",
                                  ROOT / "tools" / "gpu_run.sh", ROOT / "site" / "README.md", *PAGES],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_project_speaks_of_the_course_and_its_users_only(path):
    """Bug caught: text about lending or borrowing machines, sessions, idle timeouts or per-call
    transfer limits: a setting no learner has."""
    found = LENDING.findall(path.read_text(encoding="utf-8"))
    assert not found, f"{path.name}: {found}"


def test_expected_results_keep_their_columns_and_say_what_is_not_measured():
    """Bug caught: the table of results losing a column, or a GPU cell that reads as measured (or
    names who measured it) when nobody has."""
    text = (ROOT / "site" / "results.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert rows[0] == "| lesson | run | 2-core CPU: accuracy | CPU: training time | GPU |"
    assert all(row.count("|") == 6 for row in rows), "five columns in every row"
    gpu = [row.rstrip("|").rsplit("|", 1)[1].strip() for row in rows[2:]]
    assert all(cell in ("not measured yet", "—") or cell.startswith("target ") for cell in gpu), gpu


def test_versions_named_in_the_pages_are_the_pinned_ones():
    """Bug caught: a command in the pages that installs another torch than requirements.txt pins."""
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    for page in PAGES:
        for name, version in re.findall(r"\b(torch|torchvision)==([\w.]+)", page.read_text(encoding="utf-8")):
            assert version == pins[name], f"{page.name}: {name}=={version}, but requirements.txt pins {pins[name]}"


# --- the site's hooks ---------------------------------------------------------------------------
def test_streams_are_joined_only_where_they_follow_each_other():
    """Bug caught: a cell's last printed line shown above its epoch bars (MyST-NB's nb_merge_streams
    joins all of a cell's stdout into its first piece)."""
    out = nbformat.v4.new_output
    cell = nbformat.v4.new_code_cell("fit(...)", outputs=[
        out("stream", name="stdout", text="mixed precision: True\n"),
        out("stream", name="stdout", text="two pieces\n"),
        out("display_data", data={"text/plain": "epoch 1/2 ███"}),
        out("display_data", data={"text/plain": "epoch 2/2 ███"}),
        out("stream", name="stderr", text="a warning\n"),
        out("stream", name="stdout", text="test accuracy 99.28%\n"),
    ])
    merged = merge_adjacent_streams(nbformat.v4.new_notebook(cells=[cell])).cells[0].outputs
    assert [(o.output_type, o.get("name")) for o in merged] == [
        ("stream", "stdout"), ("display_data", None), ("display_data", None), ("stream", "stderr"),
        ("stream", "stdout")]
    assert merged[0].text == "mixed precision: True\ntwo pieces\n"
    assert merged[-1].text == "test accuracy 99.28%\n", "the last line stays last"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_real_lesson_keeps_every_output_in_place(path):
    """Bug caught: the site's reader dropping or reordering a lesson's outputs."""
    text = path.read_text(encoding="utf-8")
    original = nbformat.reads(text, as_version=4)
    shown = read_lesson(text)
    for before, after in zip(original.cells, shown.cells):
        kinds = [o.output_type for o in before.get("outputs", [])]
        squeezed = [k for i, k in enumerate(kinds) if not (k == "stream" and i and kinds[i - 1] == "stream"
                                                           and before.outputs[i - 1].name == before.outputs[i].name)]
        assert [o.output_type for o in after.get("outputs", [])] == squeezed


def test_helpers_module_list_becomes_a_table_of_links():
    """Bug caught: the API page's module list run together into one paragraph."""
    import inspect

    import helpers

    lines = module_table(inspect.cleandoc(helpers.__doc__).splitlines())  # as autodoc hands it over
    table = lines[lines.index(".. list-table::"):]
    modules = re.findall(r":mod:`helpers\.(\w+)`", "\n".join(table))
    assert modules and all((ROOT / "helpers" / f"{m}.py").is_file() for m in modules)
    assert "   * - :mod:`helpers.config`" in lines and "     - (lesson 01)" in lines
    assert module_table(["Plain text.", "", "    an indented example"]) == ["Plain text.", "", "    an indented example"]


def test_the_site_renders_from_the_sphinx_config_without_merge_streams():
    """Bug caught: MyST-NB's nb_merge_streams switched back on, or signatures printed raw."""
    conf = (ROOT / "site" / "conf.py").read_text()
    assert "nb_merge_streams = False" in conf and "autodoc_preserve_defaults = True" in conf
