"""(Re)build helpers/visdom_static/: the browser files visdom's server needs, fetched from npm.

visdom 0.2.4's ``python -m visdom.server`` downloads these files from CDNs (unpkg, cdn.plot.ly,
d3js.org, cdnjs) on every start until it has written ``static/version.built`` (see
``visdom/server/build.py``, ``download_scripts``), and crashes offline. Every one of them is a
file of an npm package at a fixed version, so this script fetches each package once with
``npm pack`` (from the npm registry), takes out exactly the files visdom saves, under the names
visdom saves them, and records package@version, npm integrity and each file's sha256 in
``MANIFEST.json``. ``helpers.visdom_server`` installs them from there (lesson 04).

    python tools/vendor_visdom_static.py            # rebuild the folder (needs npm + registry)
    python tools/vendor_visdom_static.py --check    # verify the folder against its MANIFEST

Pinned to what visdom 0.2.4 asks for; if visdom's build.py changes, update FILES below.
"""
import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "helpers" / "visdom_static"
VISDOM_VERSION = "0.2.4"

UNPKG = "https://unpkg.com/"
MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.5/"
# (npm package@version, file inside the package, path under visdom's static/, visdom's URL)
FILES = [
    ("jquery@3.1.1", "dist/jquery.min.js", "js/jquery.min.js",
     UNPKG + "jquery@3.1.1/dist/jquery.min.js"),
    ("bootstrap@3.3.7", "dist/js/bootstrap.min.js", "js/bootstrap.min.js",
     UNPKG + "bootstrap@3.3.7/dist/js/bootstrap.min.js"),
    ("react@16.2.0", "umd/react.production.min.js", "js/react-react.min.js",
     UNPKG + "react@16.2.0/umd/react.production.min.js"),
    ("react-dom@16.2.0", "umd/react-dom.production.min.js", "js/react-dom.min.js",
     UNPKG + "react-dom@16.2.0/umd/react-dom.production.min.js"),
    ("react-modal@3.1.10", "dist/react-modal.min.js", "js/react-modal.min.js",
     UNPKG + "react-modal@3.1.10/dist/react-modal.min.js"),
    # cdn.plot.ly/plotly-2.11.1.min.js is plotly.js's dist/plotly.min.js, which npm ships
    # alone in plotly.js-dist-min (plotly.js-dist holds only the unminified plotly.js).
    ("plotly.js-dist-min@2.11.1", "plotly.min.js", "js/plotly-plotly.min.js",
     "https://cdn.plot.ly/plotly-2.11.1.min.js"),
    ("sjcl@1.0.7", "sjcl.js", "js/sjcl.js", UNPKG + "sjcl@1.0.7/sjcl.js"),
    ("layout-bin-packer@1.4.0", "dist/layout-bin-packer.js.map", "js/layout-bin-packer.js.map",
     UNPKG + "layout-bin-packer@1.4.0/dist/layout-bin-packer.js.map"),
    ("layout-bin-packer@1.4.0", "dist/layout-bin-packer.js", "js/layout_bin_packer.js",
     UNPKG + "layout-bin-packer@1.4.0/dist/layout-bin-packer.js"),
    # d3js.org/d3.v3.min.js is the last d3 v3 release, 3.5.17.
    ("d3@3.5.17", "d3.min.js", "js/d3.v3.min.js", "http://d3js.org/d3.v3.min.js"),
    ("d3-selection-multi@1.0.1", "build/d3-selection-multi.js", "js/d3-selection-multi.v1.js",
     "https://d3js.org/d3-selection-multi.v1.js"),
    ("save-svg-as-png@1.4.17", "lib/saveSvgAsPng.js", "js/saveSvgAsPng.js",
     UNPKG + "save-svg-as-png@1.4.17/lib/saveSvgAsPng.js"),
    ("react-resizable@1.4.6", "css/styles.css", "css/react-resizable-styles.css",
     UNPKG + "react-resizable@1.4.6/css/styles.css"),
    ("react-grid-layout@0.16.3", "css/styles.css", "css/react-grid-layout-styles.css",
     UNPKG + "react-grid-layout@0.16.3/css/styles.css"),
    ("bootstrap@3.3.7", "dist/css/bootstrap.min.css", "css/bootstrap.min.css",
     UNPKG + "bootstrap@3.3.7/dist/css/bootstrap.min.css"),
    # unpkg.com/classnames@2.2.5 answers with the package's main file; visdom files it
    # under fonts/ because the name has no .js/.css ending.
    ("classnames@2.2.5", "index.js", "fonts/classnames", UNPKG + "classnames@2.2.5"),
] + [
    ("bootstrap@3.3.7", f"dist/fonts/glyphicons-halflings-regular.{ext}",
     f"fonts/glyphicons-halflings-regular.{ext}",
     UNPKG + f"bootstrap@3.3.7/dist/fonts/glyphicons-halflings-regular.{ext}")
    for ext in ("eot", "woff2", "woff", "ttf", "svg")
] + [
    ("mathjax@2.7.5", path, "js/mathjax/2.7.5/" + path, MATHJAX_CDN + path)
    for path in (
        "config/Safe.js",
        "config/TeX-AMS-MML_HTMLorMML.js",
        "extensions/Safe.js",
        "jax/output/SVG/fonts/TeX/fontdata.js",
        "jax/output/SVG/jax.js",
        "jax/output/SVG/fonts/TeX/Size1/Regular/Main.js",
        "jax/output/SVG/config.js",
        "MathJax.js",
    )
]
# visdom saves the svg font under a name that keeps the URL's fragment; its download step
# looks for that name, browsers ask for the plain one. The installer writes both.
ALIASES = {
    "fonts/glyphicons-halflings-regular.svg#glyphicons_halflingsregular":
        "fonts/glyphicons-halflings-regular.svg",
}
LICENSE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "license", "LICENSE-MIT")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def npm_pack(spec: str, dest: Path) -> dict:
    """Fetch one package tarball from the npm registry; return npm's description of it."""
    result = subprocess.run(
        ["npm", "pack", spec, "--json", "--silent", "--pack-destination", str(dest)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    info = json.loads(result.stdout)[0]
    info["tarball"] = dest / info["filename"]
    return info


def build(out: Path = OUT) -> dict:
    packages = sorted({spec for spec, *_ in FILES})
    tmp_out = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp_out, ignore_errors=True)
    tmp_out.mkdir(parents=True)
    manifest = {"visdom": VISDOM_VERSION, "packages": {}, "files": [], "aliases": ALIASES}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in packages:
            info = npm_pack(spec, Path(tmp))
            with tarfile.open(info["tarball"]) as tar:
                members = {m.name.split("/", 1)[1]: m for m in tar.getmembers()
                           if m.isfile() and "/" in m.name}
                pkg_json = json.load(tar.extractfile(members["package.json"]))
                license_file = next((n for n in LICENSE_NAMES if n in members), None)
                if license_file:
                    dest = tmp_out / "licenses" / f"{info['name']}-{info['version']}.txt"
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(tar.extractfile(members[license_file]).read())
                manifest["packages"][spec] = {
                    "name": info["name"], "version": info["version"],
                    "integrity": info.get("integrity"),
                    "license": pkg_json.get("license") or pkg_json.get("licenses"),
                    "license_file": f"licenses/{info['name']}-{info['version']}.txt" if license_file else None,
                }
                for pkg_spec, src, dest_rel, url in FILES:
                    if pkg_spec != spec:
                        continue
                    dest = tmp_out / dest_rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(tar.extractfile(members[src]).read())
                    manifest["files"].append({
                        "path": dest_rel, "package": spec, "source": src, "url": url,
                        "size": dest.stat().st_size, "sha256": sha256(dest),
                    })
            print(f"  {spec}: {sum(1 for f in FILES if f[0] == spec)} file(s)")
    manifest["files"].sort(key=lambda f: f["path"])
    (tmp_out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp_out.rename(out)
    return manifest


def check(out: Path = OUT) -> list[str]:
    """Return a list of problems: files missing, changed, or not in the MANIFEST."""
    manifest = json.loads((out / "MANIFEST.json").read_text())
    problems = []
    listed = {"MANIFEST.json"} | {f["path"] for f in manifest["files"]}
    listed |= {p["license_file"] for p in manifest["packages"].values() if p["license_file"]}
    for entry in manifest["files"]:
        path = out / entry["path"]
        if not path.is_file():
            problems.append(f"missing: {entry['path']}")
        elif sha256(path) != entry["sha256"]:
            problems.append(f"changed: {entry['path']}")
    for path in out.rglob("*"):
        if path.is_file() and path.relative_to(out).as_posix() not in listed:
            problems.append(f"not in MANIFEST: {path.relative_to(out).as_posix()}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only verify the folder")
    parser.add_argument("--out", type=Path, default=OUT, help=f"target folder (default {OUT})")
    args = parser.parse_args(argv)
    if not args.check:
        print(f"fetching {len({f[0] for f in FILES})} npm packages into {args.out}")
        build(args.out)
    problems = check(args.out)
    for p in problems:
        print(p, file=sys.stderr)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{args.out}: {'OK' if not problems else 'BROKEN'}, {total / 1e6:.2f} MB")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
