import random

import numpy as np
import torch

from helpers import device


def test_get_device_prefers_an_accelerator(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert device.get_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert device.get_device() == torch.device("cpu")


def test_get_device_can_be_forced(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.get_device() == torch.device("cpu")
    assert device.get_device("meta") == torch.device("meta")


def _draw():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_seed_everything_makes_every_generator_repeat():
    device.seed_everything(123)
    first = _draw()
    device.seed_everything(123)
    assert _draw() == first
    device.seed_everything(124)
    assert _draw() != first


def test_setup_seeds_and_reports(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "1")
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    dev = device.setup(seed=7)
    a = torch.rand(2)
    device.seed_everything(7)
    assert torch.equal(a, torch.rand(2))
    assert dev == torch.device("cpu")
    out = capsys.readouterr().out
    assert "device: cpu" in out and "mode: quick" in out and "seed: 7" in out
