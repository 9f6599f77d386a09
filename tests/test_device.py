import random

import numpy as np
import pytest
import torch

from helpers import device


@pytest.fixture
def machine(monkeypatch):
    """``machine(cuda=..., mps=..., gpus=...)``: pretend this machine has those devices."""
    monkeypatch.delenv("COURSE_DEVICE", raising=False)

    def pretend(cuda=False, mps=False, gpus=1):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus if cuda else 0)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    return pretend


def test_get_device_prefers_cuda_then_mps_then_the_cpu(machine):
    machine(cuda=True, mps=True)
    assert device.get_device() == torch.device("cuda")
    machine(cuda=False, mps=True)
    assert device.get_device() == torch.device("mps")
    machine(cuda=False, mps=False)
    assert device.get_device() == torch.device("cpu")


def test_get_device_can_be_forced(machine, monkeypatch):
    machine(cuda=True, mps=True, gpus=2)
    for value, expected in [("cpu", "cpu"), (" CPU\n", "cpu"), ("mps", "mps"), ("Cuda:1", "cuda:1")]:
        monkeypatch.setenv("COURSE_DEVICE", value)
        assert device.get_device() == torch.device(expected), value
    monkeypatch.setenv("COURSE_DEVICE", "   ")  # blank: the best one
    assert device.get_device() == torch.device("cuda")
    assert device.get_device("cpu") == torch.device("cpu")  # an argument wins over COURSE_DEVICE
    assert device.get_device(torch.device("mps")) == torch.device("mps")


@pytest.mark.parametrize("value", ["tpu", "gpu", "cuda:x", "cpu:0", "meta", "cuda:"])
def test_an_unknown_device_is_a_clear_error(machine, monkeypatch, value):
    machine(cuda=False, mps=False)
    monkeypatch.setenv("COURSE_DEVICE", value)
    with pytest.raises(ValueError) as error:
        device.get_device()
    message = str(error.value)
    assert message.startswith(f"COURSE_DEVICE={value!r} is not a device the course knows")
    assert "use cpu, cuda (or cuda:N) or mps" in message and message.endswith("This machine has: cpu.")
    with pytest.raises(ValueError, match=rf"^get_device\({value!r}\) is not a device"):
        device.get_device(value)


@pytest.mark.parametrize("value, has", [("cuda", "mps, cpu"), ("mps", "cpu"), ("cuda:2", "cuda (cuda:0 to cuda:1), cpu")])
def test_an_unavailable_device_is_one_line_naming_what_the_machine_has(machine, monkeypatch, value, has):
    machine(cuda=value == "cuda:2", mps=value == "cuda", gpus=2)
    monkeypatch.setenv("COURSE_DEVICE", value)
    with pytest.raises(ValueError) as error:
        device.get_device()
    assert str(error.value) == (f"COURSE_DEVICE={value!r} asks for a device this machine does not have. "
                                f"This machine has: {has}: pick one of those, or unset it for the best one.")


def test_setup_refuses_an_unavailable_device_before_reporting_it(machine, monkeypatch, capsys):
    machine(cuda=False)
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(ValueError, match="COURSE_DEVICE='cuda'"):
        device.setup()
    assert "device:" not in capsys.readouterr().out


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


# ----------------------------------------------------------- what is safe and fast on a CPU
@pytest.mark.parametrize("capability, isa, expected", [
    ("AVX512", "", True),
    ("AVX512", "AVX512_CORE_BF16", True),
    ("AVX512", "avx10_1_512", True),
    ("AVX512", "ALL", True),
    ("AVX512", "AVX2", False),       # oneDNN capped below AVX-512: its AVX2 kernels run
    ("AVX512", "avx2_vnni", False),
    ("AVX512", "SSE41", False),
    ("AVX2", "", False),             # a laptop without AVX-512
    ("DEFAULT", "", False),
])
def test_cpu_has_avx512_follows_the_cpu_and_onednns_cap(monkeypatch, capability, isa, expected):
    """Bug caught: channels_last allowed on a CPU whose oneDNN runs its AVX2 kernels, which hang."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    assert device.cpu_has_avx512() is expected
    assert device.channels_last_is_safe("cpu") is expected
    assert device.use_channels_last("cpu") is expected
    assert device.channels_last_is_safe("cuda") and device.use_channels_last("cuda")
    assert device.channels_last_is_safe("mps") and not device.use_channels_last("mps")


@pytest.mark.parametrize("avx512, bf16, amx, expected", [
    (True, True, False, True), (True, False, True, True),
    (True, False, False, False),  # AVX-512 alone emulates bfloat16: slower than float32
    (False, True, True, False),
])
def test_use_bf16_needs_native_bfloat16_units(monkeypatch, avx512, bf16, amx, expected):
    monkeypatch.setattr(device, "cpu_has_avx512", lambda: avx512)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert device.use_bf16("cpu") is expected
    assert device.use_bf16("cuda") and not device.use_bf16("mps")
