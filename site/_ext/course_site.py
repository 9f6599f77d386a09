"""The course's Sphinx hooks: lessons found by name, folded solutions, lesson links in the API.

- every ``notebooks/NN_*.ipynb`` is a lesson page (``site/notebooks`` links to ``notebooks/``);
- :func:`read_lesson` reads a notebook as saved and, for the page only, folds each exercise
  solution (cells tagged ``solution``) behind a "Show the solution" toggle, drops the saved widget
  state (the page shows each widget's text fallback and static figure) and joins the pieces of
  one printed stream that follow each other (:func:`merge_adjacent_streams`), keeping every
  output in its place;
- :func:`module_table` turns the module list of ``helpers``' docstring into a table on the API page;
- :func:`link_lessons` turns the "(lesson 05)" of a helper's docstring into a link to lesson 05
  (a helper whose docstring names no lesson gets its module's, :func:`module_lesson_note`);
- the Colab badge image is served from ``_static`` so pages need nothing from the internet.
"""

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "/_static/colab-badge.svg"
SOLUTION_PROMPTS = {"code_prompt_show": "Show the solution", "code_prompt_hide": "Hide the solution"}
LESSON_MENTION = re.compile(r"\b(lessons?) (\d\d(?:(?:, |-|–| and | or )\d\d)*)\b")


def repository_url(root: Path = ROOT) -> str:
    """The repository's web address: pyproject.toml's [project.urls] Repository, one place."""
    # a regex, not tomllib: the course supports Python 3.10, which has no tomllib
    found = re.search(r'^Repository\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(), re.M)
    if not found:
        raise ValueError(f'{root / "pyproject.toml"}: [project.urls] has no Repository = "https://..."')
    return found[1].rstrip("/")


def lessons(root: Path = ROOT) -> dict[str, str]:
    """Lesson number -> page name, e.g. ``{"05": "05_cnn"}``, from the notebooks present."""
    return {path.name[:2]: path.stem for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))}


def fold_solutions(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Fold each solution cell's source behind a toggle (MyST-NB's ``hide-input``) and drop
    the saved widget state; the notebook file itself is not changed."""
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "solution" in tags and "hide-input" not in tags:
            cell.metadata["tags"] = [*tags, "hide-input"]
            cell.metadata.setdefault("mystnb", {}).update(SOLUTION_PROMPTS)
    nb.metadata.pop("widgets", None)
    return nb


def merge_adjacent_streams(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Join each run of stream outputs of the same name (stdout, stderr) that follow each other into
    one, as Jupyter shows them. MyST-NB's own ``nb_merge_streams`` joins *all* of a cell's stdout
    into its first stdout output, which moves a line printed after the epoch bars (display
    outputs) above them."""
    for cell in nb.cells:
        merged = []
        for output in cell.get("outputs", []):
            last = merged[-1] if merged else None
            if (output.get("output_type") == "stream" and last is not None
                    and last.get("output_type") == "stream" and last.get("name") == output.get("name")):
                last["text"] = "".join(last["text"]) + "".join(output["text"])
            else:
                merged.append(output)
        if "outputs" in cell:
            cell["outputs"] = merged
    return nb


def read_lesson(text: str) -> nbformat.NotebookNode:
    """MyST-NB's reader for .ipynb (``nb_custom_formats``): the notebook, solutions folded, each
    output in its place."""
    return merge_adjacent_streams(fold_solutions(nbformat.reads(text, as_version=4)))


MODULE_ROW = re.compile(r"^\s*(\w+)\s{2,}(.+?)\s{2,}(\(lessons? [^)]*\))\s*$")


def module_table(lines: list[str]) -> list[str]:
    """The indented module list of ``helpers``' docstring ("    config   quick/full mode ...
    (lesson 01)") as a reStructuredText table whose first column links each module's section;
    the other lines stay as they are."""
    rows = [MODULE_ROW.match(line) for line in lines]
    if not any(rows):
        return lines
    first = next(i for i, row in enumerate(rows) if row)
    last = max(i for i, row in enumerate(rows) if row)
    table = [".. list-table::", "   :widths: 30 48 22", ""]
    for row in rows[first:last + 1]:
        if row:
            table += [f"   * - :mod:`helpers.{row[1]}`", f"     - {row[2]}", f"     - {row[3]}"]
    return lines[:first] + table + [""] + lines[last + 1:]


def link_lessons(line: str, pages: dict[str, str]) -> str:
    """``"(lessons 02 and 04)"`` -> the same words with 02 and 04 as links to those lessons'
    pages (reStructuredText ``:doc:``). A number with no lesson page yet stays plain text."""

    def link_numbers(match: re.Match) -> str:
        numbers = re.sub(
            r"\d\d",
            lambda m: f":doc:`{m[0]} </notebooks/{pages[m[0]]}>`" if m[0] in pages else m[0],
            match[2],
        )
        return f"{match[1]} {numbers}"

    return LESSON_MENTION.sub(link_numbers, line)


def module_lesson_note(obj) -> str | None:
    """For a helper whose docstring names no lesson: "From :mod:`helpers.display` (lessons 02
    and 04)." when its module's first paragraph names one, else None."""
    import sys

    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    mention = LESSON_MENTION.search(((module and module.__doc__) or "").split("\n\n")[0])
    return f"From :mod:`{module.__name__}` ({mention[0]})." if mention else None


def _link_docstring(app, what, name, obj, options, lines):
    if what == "module" and name == "helpers":
        lines[:] = module_table(lines)
    if what in {"function", "class", "exception"} and not any(map(LESSON_MENTION.search, lines)):
        note = module_lesson_note(obj)
        if note:
            lines += ["", note]
    pages = lessons()
    lines[:] = [link_lessons(line, pages) for line in lines]


def _local_colab_badge(app, doctree):
    from docutils import nodes

    for image in doctree.findall(nodes.image):
        if image["uri"] == COLAB_BADGE:
            image["uri"] = LOCAL_BADGE


def _notebook_links(app, doctree):
    """Sphinx resolves site/notebooks (a link to notebooks/) to its real path, so a Markdown link
    to ``notebooks/05_cnn.ipynb`` (the README's lesson table, one lesson citing another) names
    ``<repo>/notebooks/05_cnn``: point it back at the page ``notebooks/05_cnn``."""
    from sphinx import addnodes

    real = f"{(ROOT / 'notebooks').as_posix()}/"
    for ref in doctree.findall(addnodes.pending_xref):
        if ref.get("refdomain") == "doc" and ref.get("reftarget", "").startswith(real):
            ref["reftarget"] = "notebooks/" + ref["reftarget"].removeprefix(real)


def setup(app):
    app.connect("autodoc-process-docstring", _link_docstring)
    app.connect("doctree-read", _local_colab_badge, priority=400)  # before images are collected
    app.connect("doctree-read", _notebook_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
