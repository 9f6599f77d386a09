"""Device choice and reproducibility (introduced in lesson 01), and the processes of a
distributed run under ``torchrun`` (lesson 09)."""
import atexit
import gc
import os
import random

import numpy as np
import torch

from . import config

KINDS = ("cuda", "mps", "cpu")  # the devices the course knows, best first


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def available_devices() -> list[str]:
    """The kinds of device this machine can use, best first: e.g. ``["cuda", "cpu"]``."""
    return [kind for kind, ok in (("cuda", torch.cuda.is_available()), ("mps", _mps_available()),
                                  ("cpu", True)) if ok]


def _describe(kinds: list[str]) -> str:
    count = torch.cuda.device_count() if "cuda" in kinds else 0
    return ", ".join(f"cuda (cuda:0 to cuda:{count - 1})" if kind == "cuda" and count > 1 else kind
                     for kind in kinds)


def get_device(name: str | torch.device | None = None) -> torch.device:
    """The best device available: CUDA, then Apple's MPS, then the CPU (lesson 01).

    Pass ``name`` (or set COURSE_DEVICE) to force one: ``cpu``, ``cuda``, ``cuda:1`` or ``mps``
    (case and surrounding spaces do not matter). A device this machine lacks, or a name the
    course does not know, is a ValueError that lists the devices this machine has.
    """
    name = str(name) if isinstance(name, torch.device) else name
    if name:
        source, best = f"get_device({name!r})", "call get_device() for the best one"
    else:
        source, best = f"COURSE_DEVICE={os.environ.get('COURSE_DEVICE')!r}", "unset it for the best one"
    name = (name or os.environ.get("COURSE_DEVICE", "")).strip().lower()
    have = available_devices()
    if not name:
        return torch.device(have[0])
    kind, colon, index = name.partition(":")
    if kind not in KINDS or (colon and not (kind == "cuda" and index.isdigit())):
        raise ValueError(f"{source} is not a device the course knows: use cpu, cuda (or cuda:N) or mps. "
                         f"This machine has: {_describe(have)}.")
    if kind not in have or (index and int(index) >= torch.cuda.device_count()):
        raise ValueError(f"{source} asks for a device this machine does not have. This machine has: "
                         f"{_describe(have)}: pick one of those, or {best}.")
    return torch.device(name)


def synchronize(device) -> None:
    """Wait until ``device`` has run the work queued on it (CUDA and MPS run asynchronously),
    so that a clock read next measures that work (lessons 03 and 07). A no-op on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# oneDNN's own ISA cap (the variable's older name too); SSE41, AVX, AVX2 and AVX2_VNNI(_2) keep
# it below AVX-512 (AVX10_1_512 and AMX do not).
_ONEDNN_ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def _cpu_flag(name: str) -> bool:
    """A CPU feature as ``torch.cpu`` reports it (False where this torch cannot tell)."""
    probe = getattr(torch.cpu, f"_is_{name}_supported", None)
    try:
        return bool(probe()) if probe else False
    except RuntimeError:
        return False


def cpu_has_avx512() -> bool:
    """True when PyTorch's CPU kernels, and oneDNN's (the convolutions), run their AVX-512 code:
    the CPU has AVX-512 and neither ``ATEN_CPU_CAPABILITY`` nor ``ONEDNN_MAX_CPU_ISA`` caps it lower."""
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        return False
    for variable in _ONEDNN_ISA_VARIABLES:
        isa = os.environ.get(variable, "").strip().upper()
        if isa == "AVX" or isa.startswith(("SSE", "AVX2")):
            return False
    return True


def channels_last_is_safe(device) -> bool:
    """Whether training in the channels_last memory layout is safe on ``device`` (lessons 05 and 07).

    On CPUs without AVX-512 (most laptops), oneDNN's channels_last kernels hang or crash the
    process when they train a 1x1 convolution of stride 2 (a ResNet's projection shortcut):
    seen with torch 2.6 and 2.14. :func:`helpers.train.fit` therefore trains such CPUs in the
    default layout. CUDA and MPS are safe."""
    device = torch.device(device)
    return device.type != "cpu" or cpu_has_avx512()


def use_channels_last(device) -> bool:
    """The lessons' choice of memory layout: channels_last on CUDA, and on CPUs where it is
    safe (:func:`channels_last_is_safe`); not on MPS, where it is slower (lessons 05 and 07)."""
    device = torch.device(device)
    return device.type == "cuda" or (device.type == "cpu" and channels_last_is_safe(device))


def use_bf16(device) -> bool:
    """The lessons' choice of mixed precision: bfloat16 autocast on CUDA, and on CPUs whose
    units compute bfloat16 natively (AVX512-BF16 or AMX); elsewhere bfloat16 is emulated, which
    is slower than float32 (lessons 05 and 07). AVX-512 alone is not enough."""
    device = torch.device(device)
    if device.type == "cuda":
        return True
    return device.type == "cpu" and cpu_has_avx512() and (
        _cpu_flag("avx512_bf16") or _cpu_flag("amx_tile"))


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) in one call."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators


# ------------------------------------------------------------------ distributed runs (lesson 09)
TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


def launched_by_torchrun() -> bool:
    """True in a process that ``torchrun`` started: it sets RANK, LOCAL_RANK and WORLD_SIZE."""
    return all(os.environ.get(name, "").strip() for name in TORCHRUN_VARIABLES)


def distributed() -> bool:
    """True when this process is one of several in an initialised process group (lesson 09)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank in the process group: 0 .. world_size() - 1; 0 outside one."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """How many processes train together; 1 outside a process group."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0, the one process that prints, logs and writes files (lesson 09)."""
    return rank() == 0


def _init_process_group() -> torch.device:
    """Join torchrun's process group: NCCL and ``cuda:LOCAL_RANK`` where CUDA is used, gloo on
    the CPU. The group is destroyed when the process exits, after the DDP wrappers that still
    use it are freed (on torch 2.6 destroying it under a live DDP wrapper can hang)."""
    import torch.distributed as dist

    local_rank = int(os.environ["LOCAL_RANK"])
    wanted = os.environ.get("COURSE_DEVICE", "").strip().lower()
    if torch.cuda.is_available() and not wanted.startswith(("cpu", "mps")):
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"torchrun started local rank {local_rank}, but this machine has "
                             f"{torch.cuda.device_count()} CUDA devices: use --nproc_per_node={torch.cuda.device_count()}")
        device, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(device)
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
        atexit.register(_destroy_process_group)
    return device


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()                                  # free DDP wrappers (reference cycles) that still use it
        dist.destroy_process_group()


def setup(seed: int = 0) -> torch.device:
    """The first cell of every lesson: seed everything, pick a device, say what was chosen.

    Under ``torchrun`` (lesson 09) it also joins the process group (NCCL on GPUs, gloo on the
    CPU) and returns this rank's device (``cuda:LOCAL_RANK``, or the CPU). Every rank gets the
    same seed, so every rank builds the same model; only rank 0 prints.
    """
    device = _init_process_group() if launched_by_torchrun() else None
    seed_everything(seed)
    device = device or get_device()
    mode = "quick" if config.is_quick() else "full"
    ranks = f" | rank {rank()} of {world_size()}" if launched_by_torchrun() else ""
    if is_main_process():
        print(f"torch {torch.__version__} | device: {device}{ranks} | mode: {mode} | seed: {seed}")
    return device
