"""Find broken internal links and missing files in a built website (`bash course.sh site`).

    .venv/bin/python tools/site_links.py build/site

Sphinx warns about references it resolves itself; this reads the HTML it wrote and checks
every local ``href``/``src`` (pages, images, scripts, styles, downloads) and every ``#anchor``
into a local page. Links with a scheme (https:, mailto:, data:) are left alone: the site is
checked offline. Exits 1 and lists each broken link with the page that holds it.
"""

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

LINK_ATTRIBUTES = {"href", "src"}
# copied assets, not pages: the themes ship Jinja templates named *.html in _static
ASSET_DIRS = {"_static", "_sources"}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in LINK_ATTRIBUTES and value is not None:
                self.links.append(value)
            elif name in {"id", "name"} and value:
                self.ids.add(value)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def site_pages(site: Path) -> list[Path]:
    """The built pages: every .html file outside the asset folders."""
    return [
        path for path in sorted(site.rglob("*.html")) if not ASSET_DIRS & set(path.relative_to(site).parts)
    ]


def broken_links(site: Path) -> list[str]:
    """``"page.html: link (why)"`` for each local link in ``site``'s HTML whose file or anchor
    is missing; empty when every link resolves."""
    site = site.resolve()
    pages = {path: _parse(path) for path in site_pages(site)}
    problems = []
    for page_path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("//"):
                continue  # external: not checked offline
            target = page_path if not parts.path else (page_path.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = page_path.relative_to(site)
            if not target.is_relative_to(site):
                problems.append(f"{where}: {link} (points outside the site)")
            elif not target.is_file():
                problems.append(f"{where}: {link} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{where}: {link} (no anchor #{parts.fragment})")
    return problems


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print(
            "usage: site_links.py BUILT_SITE_DIR (e.g. build/site, made by `bash course.sh site`)",
            file=sys.stderr,
        )
        return 2
    problems = broken_links(Path(args[0]))
    for problem in problems:
        print(f"broken link: {problem}", file=sys.stderr)
    print(
        f"site_links: {len(site_pages(Path(args[0]).resolve()))} pages, {len(problems)} broken internal links"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
