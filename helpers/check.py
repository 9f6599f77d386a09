"""Self-checks for exercises and pitfall cells (introduced in lesson 01).

Pitfall cells run a mistake on purpose. ``expect_error`` shows the error a learner would
meet, without stopping "Run All", and fails loudly if the mistake stops being one.
"""
import contextlib
import re
import warnings

import torch

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # terminal colour codes inside some messages
_BUILD_NOTE = re.compile(r"\s*\(Triggered internally at [^)]*\)\.?")  # a path of torch's build


def _first_line(message) -> str:
    """A message's first line, without colour codes or torch's build-path note."""
    lines = _ANSI.sub("", str(message)).strip().splitlines()
    return _BUILD_NOTE.sub("", lines[0]) if lines else ""


@contextlib.contextmanager
def expect_error(*kinds: type[BaseException]):
    """Run a block that should raise one of ``kinds``; print the error's type and first line.

    >>> with expect_error(AttributeError):
    ...     torch.linespace(0, 1)
    AttributeError: module 'torch' has no attribute 'linespace'
    """
    kinds = kinds or (Exception,)
    try:
        yield
    except kinds as exc:
        print(f"{type(exc).__name__}: {_first_line(exc)}")
    else:
        names = " or ".join(k.__name__ for k in kinds)
        raise AssertionError(f"expected {names}, but the code ran without error")


@contextlib.contextmanager
def expect_warning(kind: type[Warning] = Warning):
    """Run a block that should warn with ``kind``; print the warning's type and first line.

    PyTorch shows some warnings only once per process; inside this block it shows them
    every time, so the cell gives the same output when run again.
    """
    warn_always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        torch.set_warn_always(warn_always)
    matching = [w for w in caught if issubclass(w.category, kind)]
    if not matching:
        raise AssertionError(f"expected a {kind.__name__}, but none was raised")
    first = matching[0]
    print(f"{first.category.__name__}: {_first_line(first.message)}")


def check(actual, expected, name: str = "answer", atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Compare an exercise's answer with the expected value and say so.

    Tensors must match in shape and (within ``atol``/``rtol``) in value; anything else must
    be equal. Prints ``✓ name`` or raises AssertionError saying what differs.
    """
    if isinstance(expected, torch.Tensor) or isinstance(actual, torch.Tensor):
        if not isinstance(actual, torch.Tensor):
            raise AssertionError(f"{name}: expected a tensor, got {type(actual).__name__}")
        expected = torch.as_tensor(expected)
        if actual.shape != expected.shape:
            raise AssertionError(f"{name}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
        a, e = actual.detach().cpu(), expected.detach().cpu()
        if a.dtype == torch.bool or e.dtype == torch.bool:
            ok = torch.equal(a.bool(), e.bool())
        else:
            ok = torch.allclose(a.double(), e.double(), atol=atol, rtol=rtol, equal_nan=True)
        if not ok:
            raise AssertionError(f"{name}: got\n{a}\nexpected\n{e}")
    elif isinstance(expected, float) or isinstance(actual, float):
        if abs(actual - expected) > atol + rtol * abs(expected):
            raise AssertionError(f"{name}: got {actual}, expected {expected}")
    elif actual != expected:
        raise AssertionError(f"{name}: got {actual!r}, expected {expected!r}")
    print(f"✓ {name}")
