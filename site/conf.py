"""Sphinx configuration of the course website: `bash course.sh site` builds it into build/site.

Sphinx + MyST-NB + sphinx-book-theme (what Jupyter Book 1.x wraps), run directly: Python only,
reads the notebooks as saved in notebooks/ and executes nothing. site/README.md explains the choices.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # autodoc imports helpers from the working tree

from course_site import repository_url  # noqa: E402

project = "An open PyTorch course"
author = "The PyTorch course authors"
copyright = "the PyTorch course authors"

extensions = ["myst_nb", "sphinx.ext.autodoc", "course_site"]
root_doc = "index"
exclude_patterns = ["README.md", "screenshots", "notebooks/.ipynb_checkpoints", "_ext"]
nitpicky = True
# Types from other libraries have no pages here (the build is offline: no intersphinx).
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(torch|torchvision|numpy|np|matplotlib|plt|ipywidgets|tqdm|PIL|"
        r"subprocess|pathlib|collections|typing|os)\b.*",
    )
]

# Notebooks: saved outputs only; solutions folded, printed streams joined where they follow each
# other (course_site.read_lesson; MyST-NB's nb_merge_streams would move lines out of order).
nb_execution_mode = "off"
nb_custom_formats = {".ipynb": "course_site.read_lesson"}
nb_ipywidgets_js = {}  # no widget JavaScript from a CDN: the text fallback and figure show
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
nb_merge_streams = False
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
myst_dmath_double_inline = True  # $$…$$ inside a paragraph, as JupyterLab renders it
suppress_warnings = ["mystnb.unknown_mime_type"]

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}
autodoc_inherit_docstrings = False  # nn.Module.forward's docstring is not the course's
# Defaults as written (loss_fn=F.cross_entropy), not as repr'd (<function ...>): a repr makes a
# signature unparsable, and Sphinx then prints it raw, with its "~torch.nn..." annotations.
autodoc_preserve_defaults = True

html_theme = "sphinx_book_theme"
html_title = "An open PyTorch course"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_show_sourcelink = False
html_theme_options = {
    "repository_url": repository_url(),
    "repository_branch": "main",
    "use_repository_button": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
# MathJax 3 vendored (site/_static/mathjax/README.md): pages load nothing from the internet.
mathjax_path = "mathjax/tex-svg-full.js"
html_context = {"default_mode": "auto"}  # unset, the theme logs a console error on a first visit
