"""helpers.visdom_server against a real visdom server, started offline; VisdomLogger talks to it.

Each server runs in a subprocess whose name lookups fail for every host but this machine (no
network at all), on a free port of 127.0.0.1, and is killed at the end of its test.
"""
import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings
from pathlib import Path

import pytest

from helpers import log, visdom_server

ROOT = Path(__file__).resolve().parent.parent
# A start takes 2-5 s on an idle laptop, and several times that on a loaded CI machine (the
# launcher imports torch). The tests wait until the server answers; this ceiling only turns a
# server that never comes up into a failure instead of a hang.
START_TIMEOUT_S = 90
CEILING_S = 30  # the same, for a logger call that should give up within its 1 s timeout
# Run the launcher with name resolution cut off for any host but this one: nothing can reach
# a CDN, exactly as on a laptop without network.
OFFLINE_LAUNCHER = r"""
import runpy, socket
_getaddrinfo = socket.getaddrinfo
def _offline(host, *args, **kwargs):
    if host not in (None, "", "localhost", "127.0.0.1", "::1", b"localhost", b"127.0.0.1"):
        raise socket.gaierror(socket.EAI_NONAME, f"offline test: no network for {host!r}")
    return _getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = _offline
runpy.run_module("helpers.visdom_server", run_name="__main__", alter_sys=True)
"""
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with _NO_PROXY.open(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _window(port: int, env: str, win: str) -> dict:
    """Ask the server (over plain HTTP, as visdom's get_window_data does) for a window's data."""
    body = json.dumps({"win": win, "eid": env}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/win_data", data=body)
    with _NO_PROXY.open(request, timeout=5) as response:
        return json.loads(response.read())


def _traces(port: int, env: str, win: str) -> dict[str, tuple[list, list]]:
    return {t["name"]: (t["x"], t["y"]) for t in _window(port, env, win)["content"]["data"]}


class Server:
    def __init__(self, proc: subprocess.Popen, port: int, output: Path):
        self.proc, self.port, self.output = proc, port, output

    def log(self) -> str:
        return self.output.read_text(errors="replace")


@pytest.fixture
def start_server(tmp_path):
    """Start ``python -m helpers.visdom_server --port <free>`` offline, with the course's runs
    folder (where visdom saves its environments) in ``tmp_path/runs-<port>``; kill it afterwards."""
    servers = []

    def start() -> Server:
        port = _free_port()
        output = tmp_path / f"server-{port}.log"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               "COURSE_RUNS_DIR": str(tmp_path / f"runs-{port}")}
        with open(output, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-c", OFFLINE_LAUNCHER, "--port", str(port)],
                                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        server = Server(proc, port, output)
        servers.append(server)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the visdom server exited with {proc.returncode}:\n{server.log()}")
            try:
                if _get(port, "/", timeout=1)[0] == 200:
                    return server
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no visdom server on port {port} after {START_TIMEOUT_S}s:\n{server.log()}")
            time.sleep(0.1)

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()  # SIGKILL works on a SIGSTOPped process too
        server.proc.wait(timeout=10)


def _load_vendor_tool():
    spec = importlib.util.spec_from_file_location("vendor_visdom_static", ROOT / "tools" / "vendor_visdom_static.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ the vendored files
def test_vendored_files_match_their_manifest_and_stay_small():
    """Bug caught: a vendored browser file changed or missing against its MANIFEST, or the vendored set
    grown large."""
    tool = _load_vendor_tool()
    assert tool.check(visdom_server.VENDORED) == []
    manifest = visdom_server.load_manifest()
    import visdom

    assert manifest["visdom"] == visdom.__version__, "re-run tools/vendor_visdom_static.py for this visdom"
    assert {f["path"] for f in manifest["files"]} == {path for _, _, path, _ in tool.FILES}
    total = sum(p.stat().st_size for p in visdom_server.VENDORED.rglob("*") if p.is_file())
    assert total < 6e6, f"the vendored files grew to {total / 1e6:.1f} MB"


def test_installed_files_make_visdoms_own_download_step_fetch_nothing(tmp_path, monkeypatch):
    """Bug caught: files copied again when in place, a stale one or an old version.built not replaced, or
    visdom still downloading."""
    import requests
    from visdom.server.build import download_scripts

    static = tmp_path / "static"
    written = visdom_server.install_static(static)
    assert "version.built" in written and "js/plotly-plotly.min.js" in written
    assert visdom_server.install_static(static) == []  # all in place: nothing copied again

    (static / "js" / "react-dom.min.js").write_text("stale")
    (static / "version.built").write_text("0.0.1")
    assert sorted(visdom_server.install_static(static)) == ["js/react-dom.min.js", "version.built"]

    def no_network(*args, **kwargs):
        raise AssertionError(f"visdom tried to download {args[1:] or kwargs}")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", no_network)
    monkeypatch.setattr(urllib.request, "_opener", None)  # download_scripts installs its own
    monkeypatch.setattr(requests, "get", no_network)
    download_scripts(install_dir=str(tmp_path))  # visdom's own check: built, nothing missing


# ------------------------------------------------------------------- a live server
def test_launcher_serves_visdom_offline_on_loopback_only(start_server, tmp_path):
    """Bug caught: the launcher fetching from a CDN, listening beyond 127.0.0.1, or saving environments
    outside runs/visdom."""
    server = start_server()
    status, page = _get(server.port, "/")
    assert status == 200 and b"js/plotly-plotly.min.js" in page
    manifest = {f["path"]: f["sha256"] for f in visdom_server.load_manifest()["files"]}
    for path in ("js/plotly-plotly.min.js", "js/react-dom.min.js", "css/bootstrap.min.css",
                 "js/mathjax/2.7.5/MathJax.js"):
        status, body = _get(server.port, "/static/" + path)
        assert status == 200, path
        assert hashlib.sha256(body).hexdigest() == manifest[path], path
    assert _get(server.port, "/static/js/main.js")[0] == 200  # visdom's own app
    # Bound to 127.0.0.1 alone: another loopback address of this machine is refused.
    with socket.socket() as s:
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.2", server.port)) != 0
    assert "Traceback" not in server.log() and "Downloading" not in server.log(), server.log()
    # It keeps its environments in the course's runs folder, and opens on the course's one.
    assert f"http://127.0.0.1:{server.port}/env/pytorch-course " in server.log()
    assert (tmp_path / f"runs-{server.port}" / "visdom" / "pytorch-course.json").is_file()
    status, page = _get(server.port, "/env/pytorch-course")
    assert status == 200 and b"var ACTIVE_ENV = 'pytorch-course';" in page


def test_visdom_logger_draws_windows_with_the_logged_values(start_server):
    """Bug caught: visdom lines grouped or labelled wrongly, points replacing each other, or a second run
    appending to old windows."""
    server = start_server()
    env = f"test_{uuid.uuid4().hex[:8]}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning of ours or visdom's on the happy path
        with log.VisdomLogger(env=env, port=server.port) as logger:
            assert logger.enabled
            for epoch in (1, 2, 3):
                logger(epoch, {"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 2.0 / epoch,
                               "train_acc": 0.3 * epoch, "lr": 0.1})
            logger.log_scalar("grad_norm", 4.0, 10)
            logger.log_scalar("grad_norm", 3.0, 20)
    assert _traces(server.port, env, "loss") == {
        "train": ([1, 2, 3], [1.0, 0.5, pytest.approx(1 / 3)]),
        "val": ([1, 2, 3], [2.0, 1.0, pytest.approx(2 / 3)]),
    }
    assert _traces(server.port, env, "acc") == {"train": ([1, 2, 3], [0.3, 0.6, pytest.approx(0.9)])}
    assert _traces(server.port, env, "lr") == {"lr": ([1, 2, 3], [0.1, 0.1, 0.1])}
    assert _traces(server.port, env, "grad_norm") == {"grad_norm": ([10, 20], [4.0, 3.0])}
    assert _window(server.port, env, "loss")["title"] == "loss"

    # A second run in the same env starts the windows afresh instead of appending to old lines.
    with log.VisdomLogger(env=env, port=server.port) as again:
        again(1, {"train_loss": 0.7})
    assert _traces(server.port, env, "loss") == {"train": ([1], [0.7])}


@pytest.fixture
def posts(monkeypatch):
    """Count the requests the visdom client sends (after a logger gives up: none)."""
    import requests

    sent = []
    original = requests.Session.post

    def post(self, url, *args, **kwargs):
        sent.append(url)
        return original(self, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "post", post)
    return sent


def _assert_no_more_requests(logger, posts):
    """A logger that gave up is a no-op: it sends nothing more, and says nothing more."""
    sent = len(posts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger(99, {"train_loss": 0.1})
        logger.log_scalar("grad_norm", 1.0, 99)
    assert len(posts) == sent


def test_visdom_logger_survives_the_server_dying_mid_run(start_server, run_within, posts):
    """Bug caught: a server that died mid-run crashing training, or warned about at every epoch."""
    server = start_server()
    logger = log.VisdomLogger(env="dying", port=server.port)
    logger(1, {"train_loss": 1.0, "val_loss": 1.5})
    assert logger.enabled and _traces(server.port, "dying", "loss")["val"] == ([1], [1.5])
    server.proc.kill()
    server.proc.wait(timeout=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def rest_of_the_run():
            for epoch in range(2, 12):
                logger(epoch, {"train_loss": 1.0 / epoch, "val_loss": 1.5 / epoch})
            logger.log_scalar("grad_norm", 1.0, 5)
            logger.close()
        run_within(CEILING_S, rest_of_the_run)
    assert [w.category for w in caught] == [log.DashboardWarning], [str(w.message) for w in caught]
    assert "went away" in str(caught[0].message) and "course.sh visdom" in str(caught[0].message)
    assert not logger.enabled
    _assert_no_more_requests(logger, posts)


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP to freeze the server (POSIX)")
def test_visdom_logger_does_not_hang_on_a_frozen_server(start_server, run_within, posts):
    """Bug caught: a frozen (SIGSTOPped) server hanging training on a request without a timeout."""
    server = start_server()
    logger = log.VisdomLogger(env="frozen", port=server.port, timeout=1.0)
    logger(1, {"train_loss": 1.0})
    os.kill(server.proc.pid, signal.SIGSTOP)  # alive, port open, never answers
    try:
        with pytest.warns(log.DashboardWarning, match="Timeout") as caught:
            def run():
                for epoch in range(2, 6):
                    logger(epoch, {"train_loss": 1.0 / epoch, "val_loss": 2.0 / epoch})
            run_within(CEILING_S, run)  # one 1 s timeout, then no-ops
        assert len(caught) == 1
        assert not logger.enabled
        _assert_no_more_requests(logger, posts)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


def test_start_in_background_waits_for_the_server_and_gives_up_on_a_dead_one(monkeypatch):
    """Bug caught: start_in_background returning before the server listens, or a dead server's process
    returned.
    The lesson-06 launcher returns a process only once its port accepts connections."""
    port = visdom_server.free_port()
    # A stand-in for the server that listens on the port after a moment, then waits.
    listener = ("import socket, sys, time; time.sleep(0.5); s = socket.socket(); "
                f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)")
    real_popen = subprocess.Popen
    monkeypatch.setattr(visdom_server.subprocess, "Popen",
                        lambda args, **kw: real_popen([sys.executable, "-c", listener], **kw))
    server = visdom_server.start_in_background(port, timeout=30)
    try:
        assert server is not None and server.poll() is None and visdom_server._port_busy(port)
    finally:
        server.terminate()
        server.wait()
    monkeypatch.setattr(visdom_server.subprocess, "Popen",
                        lambda args, **kw: real_popen([sys.executable, "-c", "raise SystemExit(1)"], **kw))
    assert visdom_server.start_in_background(visdom_server.free_port(), timeout=30) is None


def test_start_in_background_refuses_a_port_already_taken():
    """Bug caught: something else listening on the port passed for the server just started."""
    with socket.create_server(("127.0.0.1", 0)) as other:
        port = other.getsockname()[1]
        with pytest.warns(RuntimeWarning, match=f"port {port} on 127.0.0.1 is already in use"):
            assert visdom_server.start_in_background(port, timeout=5) is None


@pytest.mark.parametrize("port", ["70000", "0", "http"])
def test_a_port_out_of_range_is_a_usage_error_not_a_traceback(capsys, port):
    """Bug caught: --port 70000, 0 or a word giving a traceback instead of a usage error."""
    with pytest.raises(SystemExit) as exit_:
        visdom_server.main(["--port", port])
    assert exit_.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_prepare_env_path_keeps_a_saved_environment(tmp_path, monkeypatch):
    """Bug caught: the course's environment file written afresh at every start, wiping the plots
    visdom saved there in earlier sessions; or the default folder not runs/visdom."""
    monkeypatch.setenv("COURSE_RUNS_DIR", str(tmp_path / "runs"))
    folder = visdom_server.prepare_env_path()
    assert folder == tmp_path / "runs" / "visdom"
    saved = folder / "pytorch-course.json"
    assert json.loads(saved.read_text()) == {"jsons": {}, "reload": {}}  # an empty environment to open
    saved.write_text('{"jsons": {"loss": {}}, "reload": {}}')  # what a session saved
    assert visdom_server.prepare_env_path() == folder
    assert saved.read_text() == '{"jsons": {"loss": {}}, "reload": {}}'
