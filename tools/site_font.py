"""The website's Chinese font: Noto Sans SC cut down to the CJK characters the course uses.

    .venv/bin/python tools/site_font.py            # regenerate site/_static/fonts/ (needs npm)
    .venv/bin/python tools/site_font.py --check    # list characters the committed fonts lack

Browsers without a CJK font (a bare Linux, headless Chromium) draw the course's Chinese terms
as empty boxes, so the site ships its own font, subset to the characters the notebooks, the
README, the site's pages and the helpers' docstrings hold (a few dozen kB, not 10 MB). The
full font comes once from the npm registry (`npm pack`, FONT_PACKAGE below; SIL OFL 1.1).
tests/test_site.py fails when the text gains a CJK character the subset lacks: run this tool
then, and commit the new .woff files.
"""

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FONT_DIR = ROOT / "site" / "_static" / "fonts"
FONT_PACKAGE = "@expo-google-fonts/noto-sans-sc@0.4.3"
# weight -> the TTF inside that package; the site uses regular text and bold headings
WEIGHTS = {400: "400Regular/NotoSansSC_400Regular.ttf", 700: "700Bold/NotoSansSC_700Bold.ttf"}
# CJK punctuation, CJK ideographs (extension A and the main block), full-width forms
CJK_RANGES = ((0x3000, 0x303F), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xFF00, 0xFFEF))
UNICODE_RANGE_CSS = ", ".join(f"U+{lo:04X}-{hi:04X}" for lo, hi in CJK_RANGES)


def is_cjk(char: str) -> bool:
    return any(lo <= ord(char) <= hi for lo, hi in CJK_RANGES)


def _strings(value):
    """Every string inside a JSON value (a notebook's sources and text outputs)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def site_texts(root: Path = ROOT):
    """The text the site renders: notebooks (cells and outputs), README, site pages, helpers."""
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        yield from _strings(json.loads(path.read_text(encoding="utf-8")))
    yield (root / "README.md").read_text(encoding="utf-8")
    for pattern in ("site/*.md", "helpers/*.py"):
        for path in sorted(root.glob(pattern)):
            yield path.read_text(encoding="utf-8")


def cjk_chars(texts) -> set[str]:
    return {char for text in texts for char in text if is_cjk(char)}


def font_path(weight: int) -> Path:
    return FONT_DIR / f"noto-sans-sc-course-{weight}.woff"


def missing_chars(font: Path, chars: set[str]) -> set[str]:
    """The characters of ``chars`` that ``font`` has no glyph for."""
    from fontTools.ttLib import TTFont

    with TTFont(font) as ttf:
        cmap = ttf.getBestCmap()
    return {char for char in chars if ord(char) not in cmap}


def fetch_fonts(workdir: Path) -> dict[int, Path]:
    """Unpack FONT_PACKAGE from the npm registry into ``workdir``; weight -> TTF path."""
    try:
        out = subprocess.run(
            ["npm", "pack", FONT_PACKAGE, "--silent"],
            cwd=workdir,
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError) as error:
        sys.exit(
            f"site_font: could not fetch {FONT_PACKAGE} with npm ({error}); "
            "npm and the npm registry are needed only to regenerate the font"
        )
    with tarfile.open(workdir / out[-1]) as archive:
        archive.extractall(workdir, filter="data")
    return {weight: workdir / "package" / name for weight, name in WEIGHTS.items()}


def subset(source: Path, target: Path, chars: set[str]) -> None:
    from fontTools import subset as ft_subset

    options = ft_subset.Options()
    options.flavor = "woff"  # zlib: woff2 would need brotli, and the subset is small anyway
    options.layout_features = ["*"]
    options.name_IDs = ["*"]  # keep the copyright and licence names the OFL asks for
    font = ft_subset.load_font(str(source), options)
    subsetter = ft_subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(map(ord, chars)))
    subsetter.subset(font)
    target.parent.mkdir(parents=True, exist_ok=True)
    ft_subset.save_font(font, str(target), options)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report missing characters")
    args = parser.parse_args(argv)
    chars = cjk_chars(site_texts())
    if args.check:
        missing = {w: missing_chars(font_path(w), chars) for w in WEIGHTS}
        for weight, lacking in missing.items():
            print(
                f"{font_path(weight).name}: {len(chars) - len(lacking)}/{len(chars)} characters"
                + (f", missing {''.join(sorted(lacking))}" if lacking else "")
            )
        return 1 if any(missing.values()) else 0
    with tempfile.TemporaryDirectory() as tmp:
        for weight, source in fetch_fonts(Path(tmp)).items():
            subset(source, font_path(weight), chars)
            print(
                f"{font_path(weight).relative_to(ROOT)}: {len(chars)} characters, "
                f"{font_path(weight).stat().st_size / 1024:.0f} kB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
