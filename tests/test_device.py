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
    """Bug caught: the device order changed, so a machine with a GPU trains on the CPU."""
    machine(cuda=True, mps=True)
    assert device.get_device() == torch.device("cuda")
    machine(cuda=False, mps=True)
    assert device.get_device() == torch.device("mps")
    machine(cuda=False, mps=False)
    assert device.get_device() == torch.device("cpu")


def test_get_device_can_be_forced(machine, monkeypatch):
    """Bug caught: COURSE_DEVICE's case or spaces not ignored, cuda:N refused, or the argument not winning
    over the variable."""
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
    """Bug caught: a device name the course does not know (tpu, cuda:x, cuda:) passed on to torch's own
    error."""
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
    """Bug caught: a device this machine lacks (cuda:2 of two GPUs) accepted, or the error not listing the
    devices it has."""
    machine(cuda=value == "cuda:2", mps=value == "cuda", gpus=2)
    monkeypatch.setenv("COURSE_DEVICE", value)
    with pytest.raises(ValueError) as error:
        device.get_device()
    assert str(error.value) == (f"COURSE_DEVICE={value!r} asks for a device this machine does not have. "
                                f"This machine has: {has}: pick one of those, or unset it for the best one.")


def test_setup_refuses_an_unavailable_device_before_reporting_it(machine, monkeypatch, capsys):
    """Bug caught: setup() printing 'device: cuda' before the bad COURSE_DEVICE fails."""
    machine(cuda=False)
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(ValueError, match="COURSE_DEVICE='cuda'"):
        device.setup()
    assert "device:" not in capsys.readouterr().out


def _draw():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_seed_everything_makes_every_generator_repeat():
    """Bug caught: seed_everything forgetting one of Python's, NumPy's or PyTorch's generators."""
    device.seed_everything(123)
    first = _draw()
    device.seed_everything(123)
    assert _draw() == first
    device.seed_everything(124)
    assert _draw() != first


def test_setup_seeds_and_reports(capsys, monkeypatch):
    """Bug caught: setup() ignoring its seed, or its report line missing the device, mode or seed."""
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
    """Bug caught: bfloat16 autocast chosen on a CPU that only emulates it (slower than float32), or
    refused on CUDA."""
    monkeypatch.setattr(device, "cpu_has_avx512", lambda: avx512)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert device.use_bf16("cpu") is expected
    assert device.use_bf16("cuda") and not device.use_bf16("mps")


def test_one_gpu_is_named_without_a_range(machine, monkeypatch):
    """Bug caught: a machine with one GPU described as 'cuda (cuda:0 to cuda:0)', or a GPU index
    equal to the count (cuda:1 of one GPU) accepted."""
    machine(cuda=True, gpus=1)
    monkeypatch.setenv("COURSE_DEVICE", "cuda:1")
    with pytest.raises(ValueError) as error:
        device.get_device()
    assert str(error.value).endswith("This machine has: cuda, cpu: pick one of those, or unset it for the best one.")
    monkeypatch.setenv("COURSE_DEVICE", "cuda:0")
    assert device.get_device() == torch.device("cuda:0")


def test_synchronize_waits_for_the_device_it_is_given(monkeypatch):
    """Bug caught: synchronize skipping CUDA or MPS (a timing then measures only the queueing), or
    waiting for the default GPU instead of the one given."""
    waited = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda dev=None: waited.append(("cuda", dev)))
    monkeypatch.setattr(torch.mps, "synchronize", lambda: waited.append(("mps", None)))
    device.synchronize("cpu")
    assert waited == []  # nothing to wait for on the CPU
    device.synchronize("cuda:1")
    device.synchronize(torch.device("mps"))
    assert waited == [("cuda", torch.device("cuda:1")), ("mps", None)]


@pytest.mark.parametrize("variable, isa", [("ONEDNN_MAX_CPU_ISA", "AVX"), ("ONEDNN_MAX_CPU_ISA", " avx2 "),
                                           ("DNNL_MAX_CPU_ISA", "AVX2"), ("DNNL_MAX_CPU_ISA", "sse41")])
def test_any_cap_below_avx512_keeps_the_default_layout(monkeypatch, variable, isa):
    """Bug caught: a cap to plain AVX, or one set through oneDNN's older variable DNNL_MAX_CPU_ISA,
    not seen, so channels_last runs oneDNN's kernels that hang."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, isa)
    assert not device.cpu_has_avx512() and not device.use_channels_last("cpu")
