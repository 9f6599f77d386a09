"""Start a visdom server that works offline and listens on 127.0.0.1 only (lesson 04).

    bash course.sh visdom                      # the same as the next line, inside the venv
    python -m helpers.visdom_server [--port 8097] [--env-path runs/visdom]

then open the address it prints, http://127.0.0.1:8097/env/pytorch-course, and log to it with
:class:`helpers.log.VisdomLogger` (whose default environment is that one). The environments
you save (in the page: Manage Environments → save) go to the course's runs folder
(``runs/visdom/``, see :func:`helpers.config.runs_dir`), not to ``~/.visdom``; an environment
you do not save is gone when the server stops.

Why not ``python -m visdom.server``? visdom 0.2.4 fetches its browser files (plotly, react,
bootstrap, MathJax, ...) from CDNs every time it starts, until it has written
``static/version.built``, and crashes without a network. The course ships those files in
``helpers/visdom_static/`` (fetched once from the npm registry by
``tools/vendor_visdom_static.py``, which records each package@version and sha256 in its
``MANIFEST.json``). This launcher

1. copies them into visdom's ``static/`` folder, only those missing or different, and writes
   the ``version.built`` marker, so visdom itself never downloads anything (after this, even
   ``python -m visdom.server`` starts offline);
2. starts visdom's own server with ``-bind_local`` (loopback only), without its download step
   and without tornado's autoreload (visdom forces debug mode on, which would restart the
   server whenever a Python file it imported changes).

When visdom's package folder is read-only, the files go into a merged copy of its ``static/``
under ``~/.cache/pytorch-course/`` and the server is pointed there instead.
"""
import argparse
import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from .config import VISDOM_ENV, runs_dir

VENDORED = Path(__file__).resolve().parent / "visdom_static"
DEFAULT_PORT = 8097
HOST = "127.0.0.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytorch-course"


def load_manifest(vendored: Path = VENDORED) -> dict:
    """The MANIFEST written by tools/vendor_visdom_static.py."""
    return json.loads((vendored / "MANIFEST.json").read_text())


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _copy_atomic(src: Path, dest: Path) -> None:
    """Copy so that a reader (or a second launcher) never sees half a file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def visdom_static_dir() -> Path:
    """visdom's own static/ folder (where its server looks for the browser files)."""
    import importlib.util

    spec = importlib.util.find_spec("visdom")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("visdom is not installed: pip install visdom (see requirements.txt)")
    return Path(spec.origin).parent / "static"


def visdom_version() -> str:
    """visdom.__version__, read the way visdom reads it (its VERSION file), without importing it."""
    try:
        return (visdom_static_dir().parent / "VERSION").read_text().strip()
    except OSError:
        return "no_version_file"


def install_static(static_dir: Path | None = None, vendored: Path = VENDORED) -> list[str]:
    """Put the vendored files into ``static_dir`` (default: visdom's) and write version.built.

    Only files that are missing or differ from the MANIFEST's sha256 are copied. Returns the
    paths (relative to ``static_dir``) that were written; ``[]`` when all was in place.
    """
    static_dir = Path(static_dir) if static_dir else visdom_static_dir()
    manifest = load_manifest(vendored)
    wanted = {f["path"]: (vendored / f["path"], f["sha256"]) for f in manifest["files"]}
    for alias, target in manifest.get("aliases", {}).items():
        wanted[alias] = wanted[target]
    written = []
    for rel, (src, digest) in sorted(wanted.items()):
        dest = static_dir / rel
        if _sha256(dest) != digest:
            if _sha256(src) != digest:
                raise RuntimeError(f"{src} does not match its MANIFEST: run tools/vendor_visdom_static.py")
            _copy_atomic(src, dest)
            written.append(rel)
    marker = static_dir / "version.built"
    version = visdom_version()
    if not marker.is_file() or marker.read_text().strip() != version:
        # visdom compares this with visdom.__version__; equal means "built, download nothing".
        marker.write_text(version)
        written.append("version.built")
    return written


def prepare_static() -> Path:
    """Install into visdom's static/, or into a merged copy when that folder is read-only."""
    static_dir = visdom_static_dir()
    try:
        install_static(static_dir)
        return static_dir
    except PermissionError:
        merged = CACHE / f"visdom-{visdom_version()}-static"
        shutil.copytree(static_dir, merged, dirs_exist_ok=True)
        install_static(merged)
        return merged


def _port_busy(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_in_background(port: int, timeout: float = 30.0) -> subprocess.Popen | None:
    """Start this launcher in a subprocess on 127.0.0.1:``port`` and wait until it accepts
    connections (lesson 06). Returns the process (``terminate()`` it when done), or None
    when the port is taken already (a warning says so), or the server exited or was not up
    within ``timeout`` seconds (it is then stopped)."""
    if _port_busy(port):  # something else answers there: that would pass for our server
        warnings.warn(f"port {port} on {HOST} is already in use: no visdom server was started "
                      "(helpers.visdom_server.free_port() finds a free one)", RuntimeWarning, stacklevel=2)
        return None
    server = subprocess.Popen([sys.executable, "-m", "helpers.visdom_server", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        if _port_busy(port):
            return server
        time.sleep(0.3)
    server.kill()
    server.wait()
    return None


def _quiet_user_css(record) -> bool:
    """Drop tornado's error for visdom's ``static_url("../user/style.css")`` (served elsewhere)."""
    return "user/style.css" not in record.getMessage()


def prepare_env_path(env_path=None) -> Path:
    """The folder where visdom saves its environments (default: ``runs/visdom/``), holding
    the course's environment, so that the address the launcher prints opens it at once."""
    env_path = Path(env_path).expanduser() if env_path else runs_dir() / "visdom"
    env_path.mkdir(parents=True, exist_ok=True)
    course_env = env_path / f"{VISDOM_ENV}.json"
    if not course_env.exists():
        course_env.write_text(json.dumps({"jsons": {}, "reload": {}}))  # an empty environment
    return env_path


def serve(port: int = DEFAULT_PORT, env_path: str | None = None) -> None:
    """Install the browser files, then run visdom's server on 127.0.0.1:``port`` until Ctrl-C."""
    static_dir = prepare_static()
    env_path = os.path.join(prepare_env_path(env_path), "")  # visdom joins names onto it
    from visdom.server import app, run_server

    if static_dir != visdom_static_dir():
        app.tornado_settings["static_path"] = app.tornado_settings["template_path"] = str(static_dir)
    # visdom forces debug=True, which turns on tornado's autoreload unless it is set already.
    app.tornado_settings["autoreload"] = False
    logging.getLogger("tornado.general").addFilter(_quiet_user_css)
    argv = ["visdom.server", "-port", str(port), "-bind_local", "--hostname", HOST,
            "-env_path", env_path, "-logging_level", "WARNING"]
    print(f"visdom server on http://{HOST}:{port}/env/{VISDOM_ENV} (loopback only; the environments you "
          f"save, with Manage Environments → save, go to {env_path}); stop it with Ctrl-C", flush=True)
    saved, sys.argv = sys.argv, argv
    try:
        run_server.main()  # visdom's CLI, minus download_scripts()
    finally:
        sys.argv = saved


def _port(text: str) -> int:
    """A TCP port number, 1 to 65535, for argparse."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: use 1 to 65535 (default {DEFAULT_PORT})")
    return port


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.visdom_server",
        description="Start a visdom server on 127.0.0.1 that works offline (lesson 04).")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port (default %(default)s)")
    parser.add_argument("--env-path", default=None,
                        help="folder where visdom saves its environments (default: runs/visdom/ "
                             "in the course's folder, or $COURSE_RUNS_DIR/visdom/)")
    parser.add_argument("--install-only", action="store_true",
                        help="only install the browser files into visdom's static/ folder")
    args = parser.parse_args(argv)
    if args.install_only:
        print(f"visdom's browser files are in place in {prepare_static()}")
        return 0
    if _port_busy(args.port):
        print(f"port {args.port} is already in use: a visdom server may be running already "
              f"(open http://{HOST}:{args.port}), or pick another with --port.", file=sys.stderr)
        return 1
    try:
        serve(args.port, args.env_path)
    except KeyboardInterrupt:
        print("visdom server stopped")
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"port {args.port} is already in use; pick another with --port.", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
