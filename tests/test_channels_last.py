"""The lessons' fast CPU configuration, run in a subprocess that may hang or crash.

On CPUs without AVX-512, oneDNN's channels_last kernels hang (or kill the process with a
segmentation fault) while training a 1x1 convolution of stride 2, a ResNet's projection
shortcut: seen with torch 2.6 and 2.14 (ONEDNN_MAX_CPU_ISA=AVX2 makes any x86 CPU take that
path). These tests run the configuration the lessons use (helpers.device.use_channels_last and
use_bf16, fit, cifar_resnet and resnet9) in a subprocess with a timeout, on this CPU as it is
and as an AVX2 one, so that a torch upgrade that brings the bug to the path the course takes
fails here instead of hanging a learner's notebook.
"""
import os
import subprocess
import sys

import pytest

LESSON_CONFIGURATION = """
import warnings
import torch
import helpers
from helpers import data, device, models, train

torch.set_num_threads(1)  # one thread: where the bug crashes rather than hangs
cpu = torch.device("cpu")
channels_last, amp = device.use_channels_last(cpu), device.use_bf16(cpu)
print("channels_last", channels_last, "amp", amp, flush=True)
for model in (models.cifar_resnet(8, width=4), models.resnet9(width=4)):
    torch.manual_seed(0)
    loader = data.DeviceLoader(torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,)), batch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the lessons' own choice must need no fallback
        history = train.fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                            epochs=2, val_loader=loader, amp=amp, channels_last=channels_last, progress=False)
    assert all(v == v for v in history["train_loss"]), history
print("trained", flush=True)
# What a learner may still ask for by hand: fit must not take the unsafe path.
model = models.cifar_resnet(8, width=4)
loader = data.DeviceLoader(torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,)), batch_size=16)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    train.fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.05), epochs=2, channels_last=True,
              progress=False)
print("asked", any("channels_last=True is ignored" in str(w.message) for w in caught), flush=True)
"""


def _run(extra_env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, **extra_env}
    try:
        return subprocess.run([sys.executable, "-c", LESSON_CONFIGURATION], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the lessons' configuration hung for {timeout} s with {extra_env}: "
                    f"{(exc.stdout or b'')!r}")


def test_the_lessons_configuration_trains_on_this_cpu():
    """Bug caught: the lessons' own CPU configuration (layout, bf16, fit) hanging or crashing the process
    on this CPU."""
    done = _run({})
    assert done.returncode == 0, done.stdout + done.stderr  # -11: a segmentation fault
    assert "trained" in done.stdout


def test_on_a_cpu_without_avx512_the_course_keeps_the_default_layout():
    """Bug caught: channels_last taken on a CPU without AVX-512, where oneDNN hangs or crashes.
    The bug's own configuration: oneDNN capped at AVX2. The lessons choose NCHW and fit
    ignores channels_last=True (with a warning), so the run finishes."""
    done = _run({"ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "channels_last False" in done.stdout and "trained" in done.stdout
    assert "asked True" in done.stdout
