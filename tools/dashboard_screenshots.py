"""Screenshots of lesson 06's dashboards, TensorBoard and visdom, for notebooks/images/.

    .venv/bin/python tools/dashboard_screenshots.py      # after running notebooks/06_regularization.ipynb

Needs a headless Chromium (Debian: ``apt-get install chromium``). The script

1. starts TensorBoard on the lesson's event files (``runs/06_regularization``) on a free
   loopback port and screenshots its scalars page;
2. starts the course's offline visdom server (``python -m helpers.visdom_server``), fills the
   ``lesson06`` environment from the same run with the calls the lesson teaches (``line`` with
   ``update="append"``, a two-curve window with a legend, ``images`` and ``text``), and
   screenshots it;
3. stops both servers. The PNGs go to notebooks/images/06_tensorboard.png and 06_visdom.png.
"""
import argparse
import io
import logging
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from helpers.visdom_server import free_port, start_in_background

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "notebooks" / "images"
HOST = "127.0.0.1"


def wait_for_http(url: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    """Return once ``url`` answers; a RuntimeError if the server exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise SystemExit("no Chromium found: install it (Debian: apt-get install chromium)")


def screenshot(url: str, out: Path, size=(1400, 900), wait_ms: int = 15000) -> None:
    """A headless-Chromium PNG of ``url``, after ``wait_ms`` of (virtual) page time."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={wait_ms}",
                    f"--screenshot={out}", url], check=True, capture_output=True, timeout=180)
    print(f"wrote {out.relative_to(ROOT)}")


def fill_visdom(port: int, run_dir: Path) -> None:
    """Log the run's curves, first batch and a log pane into visdom's lesson06 environment."""
    import numpy as np
    import visdom
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logging.getLogger("visdom").setLevel(logging.ERROR)  # its notices on connecting are not news here
    events = EventAccumulator(str(run_dir / "mlp_dropout"), size_guidance={"images": 0})
    events.Reload()
    curves = {}
    for name in ("train", "val"):
        sub = EventAccumulator(str(run_dir / "mlp_dropout" / f"accuracy_{name}"))
        sub.Reload()
        curves[name] = [e.value for e in sub.Scalars("accuracy")]
    losses = [e.value for e in events.Scalars("loss/train")]
    viz = visdom.Visdom(server=f"http://{HOST}", port=port, env="lesson06", raise_exceptions=True,
                        use_incoming_socket=False)
    viz.text("<b>lesson 06</b>: MLP with dropout 0.2 on 1 000 MNIST images<br>", win="log",
             opts=dict(title="log"))
    for epoch, loss in enumerate(losses, start=1):
        update = "append" if epoch > 1 else None
        viz.line(X=[epoch], Y=[loss], win="train_loss", update=update,
                 opts=dict(title="train loss", xlabel="epoch"))
        viz.line(X=[[epoch, epoch]], Y=[[curves["train"][epoch - 1], curves["val"][epoch - 1]]], win="accuracy",
                 update=update, opts=dict(title="accuracy", legend=["train", "val"], xlabel="epoch"))
        viz.text(f"epoch {epoch}: val acc {curves['val'][epoch - 1]:.3f}", win="log", append=True)
    png = events.Images("inputs/first batch")[-1].encoded_image_string
    grid = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).transpose(2, 0, 1)
    viz.image(grid, win="digits", opts=dict(title="first training batch", width=560, height=180))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "06_regularization")
    args = parser.parse_args(argv)
    if not (args.run_dir / "mlp_dropout").is_dir():
        raise SystemExit(f"no run in {args.run_dir}: run notebooks/06_regularization.ipynb first")
    servers = []
    try:
        port = free_port()
        servers.append(subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(args.run_dir), "--host", HOST,
             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for_http(f"http://{HOST}:{port}/", servers[-1])
        screenshot(f"http://{HOST}:{port}/#scalars&_smoothingWeight=0", IMAGES / "06_tensorboard.png")

        port = free_port()
        visdom_server = start_in_background(port)
        if visdom_server is None:
            raise RuntimeError(f"the course's visdom server did not start on port {port}")
        servers.append(visdom_server)
        fill_visdom(port, args.run_dir)
        screenshot(f"http://{HOST}:{port}/env/lesson06", IMAGES / "06_visdom.png")
    finally:
        for server in servers:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
