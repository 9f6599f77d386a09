"""Self-checks for exercises and pitfall cells (introduced in lesson 01).

Pitfall cells run a mistake on purpose. ``expect_error`` shows the error a learner would
meet, without stopping "Run All", and fails loudly if the mistake stops being one.

Exercises follow one pattern in every lesson:

1. the learner's cell holds a placeholder, ``answer = ...`` (or a ``def``/``class`` whose
   body is only ``...``);
2. the checking cell is one call, ``checks.ex1(answer)``, to a function of the lesson's module
   of checks (``helpers.exercises.lesson05`` ...), decorated with :func:`exercise`, whose body
   the learner does not see under the question. Run on a placeholder it prints "not answered
   yet"; on a wrong answer it shows one ``✗`` line saying what differs, and a hint, without a
   traceback (:class:`CheckFailed`); on a right one it prints ``✓`` lines;
3. a folded solution cell (hidden in JupyterLab and Colab) fills in a model answer and calls
   ``checks.ex1.model_answer(answer)``, whose output says it is the model answer's.
"""
import contextlib
import functools
import inspect
import re
import warnings
from unittest import mock

import torch

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # terminal colour codes inside some messages
_BUILD_NOTE = re.compile(r"\s*\(Triggered internally at [^)]*\)\.?")  # a path of torch's build

NOT_ANSWERED = "not answered yet"


class CheckFailed(AssertionError):
    """A check that failed: in a notebook it shows as its ``✗`` line (and hint) alone, without
    a traceback of the checking machinery (IPython's ``_render_traceback_``)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def _render_traceback_(self) -> list[str]:
        first, *rest = self.message.splitlines()
        return [f"\x1b[31m✗ {first}\x1b[0m", *rest]


def clean_message(message, max_lines: int | None = 1) -> str:
    """A message without colour codes or torch's build-path note: its first ``max_lines``
    non-empty lines (all of them for ``None``), joined by newlines."""
    text = _BUILD_NOTE.sub("", _ANSI.sub("", str(message)))
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines if max_lines is None else lines[:max_lines])


def fail(what: str, hint: str):
    """Raise the ``✗`` line ``what`` with its ``hint``: how a lesson's checks report a wrong answer."""
    raise CheckFailed(f"{what}\nhint: {hint}")


def call_learner(what: str, function, *args, hint: str):
    """``function(*args)`` for a function the learner wrote: an error inside it becomes one ``✗``
    line that names the call ``what`` and the error, with ``hint``, instead of a traceback."""
    __tracebackhide__ = True
    try:
        return function(*args)
    except CheckFailed:
        raise
    except Exception as error:  # the learner's code failed: say which call, and how
        raise CheckFailed(f"{what} raised {type(error).__name__}: {clean_message(error)}\nhint: {hint}") from None


def hint_for(answer, slips: dict, default: str) -> str:
    """The hint for a known slip (``slips`` maps a wrong value to a hint at the idea it misses),
    else ``default``; a slip matches only a value of its own type (``2`` is not ``2.0``)."""
    for value, hint in slips.items():
        if answer == value and type(answer) is type(value):
            return hint
    return default


def require_int(answer, name: str, hint: str) -> None:
    """A ``✗`` line unless ``answer`` is a Python int (a bool or a float with a whole value is not)."""
    if not (isinstance(answer, int) and not isinstance(answer, bool)):
        fail(f"{name} should be a Python int, got {type(answer).__name__} {answer!r}", hint)


@contextlib.contextmanager
def forbidding(names, what: str, hint: str):
    """Inside the block, calling any of ``names`` (dotted paths such as
    ``"torch.nn.functional.conv2d"``) raises a CheckFailed saying that ``what`` calls a function
    the exercise asks the learner to do without."""
    def refuse(name):
        def call(*args, **kwargs):
            short = name.replace("torch.nn.functional.", "F.").replace("torch.Tensor.", "Tensor.")
            raise CheckFailed(f"{what} calls {short}, which this exercise asks you to do without\nhint: {hint}")
        return call

    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(mock.patch(name, refuse(name)))
        yield


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
        print(f"{type(exc).__name__}: {clean_message(exc)}")
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
    print(f"{first.category.__name__}: {clean_message(first.message)}")


# ------------------------------------------------------------------------------ exercises
def _stub():
    ...


_CLASS_BOOKKEEPING = {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__",
                      "__firstlineno__", "__static_attributes__",
                      "__parameters__", "__orig_bases__"}  # the last two: subclasses of Generic (Dataset)


def is_placeholder(value) -> bool:
    """True for an exercise's untouched placeholder: ``...`` itself, a function whose body
    is only ``...`` (or ``pass``), or a class whose body defines nothing."""
    if value is Ellipsis:
        return True
    if inspect.isfunction(value):
        return value.__code__.co_code == _stub.__code__.co_code
    if inspect.isclass(value):
        return set(vars(value)) <= _CLASS_BOOKKEEPING
    return False


def exercise(title: str):
    """Decorate an exercise's checking function; its parameters are the learner's answers.

    Calling the decorated function with answers that are still placeholders prints one line,
    ``◻ <title>: not answered yet …`` and runs no check. Otherwise it runs the checks, which
    print ``✓`` lines; the first that fails raises :class:`CheckFailed`, shown in a notebook
    as ``✗ <title>: what differs`` and the hint. It returns nothing, so a notebook shows no
    ``Out:`` value under the check. ``.model_answer(...)`` runs the same checks on a folded
    solution, under a line that says so.

    >>> @exercise("Exercise 1")
    ... def check_ex1(ex1):
    ...     check(ex1, 3, "three")
    >>> check_ex1(...)
    ◻ Exercise 1: not answered yet (replace the ... in `ex1`)
    """
    def decorate(checks):
        names = list(inspect.signature(checks).parameters)

        @functools.wraps(checks)
        def run(*answers):
            __tracebackhide__ = True  # IPython shows the learner's cell, not this wrapper
            if len(answers) != len(names):
                raise TypeError(f"{title}: the check takes {len(names)} answers "
                                f"({', '.join(names)}), got {len(answers)}")
            todo = [name for name, value in zip(names, answers) if is_placeholder(value)]
            if todo:
                print(f"◻ {title}: {NOT_ANSWERED} (replace the ... in "
                      + ", ".join(f"`{name}`" for name in todo) + ")")
                return
            try:
                checks(*answers)
            except CheckFailed as failed:
                raise CheckFailed(f"{title}: {failed.message}") from None

        def model_answer(*answers):
            """The checks, run on the folded solution: its output says whose answer passed."""
            __tracebackhide__ = True
            print(f"The model answer to {title}, checked:")
            run(*answers)

        run.model_answer = model_answer
        run.title = title
        return run
    return decorate


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


def _where_it_differs(actual: torch.Tensor, expected: torch.Tensor, reveal: bool, atol: float, rtol: float) -> str:
    """The largest difference between two tensors of one shape, and where: a few words, not
    two screenfuls of numbers."""
    a, e = actual.double(), expected.double()
    if a.numel() <= 6:
        return f"got {actual.tolist()}" + (f", expected {expected.tolist()}" if reveal else "")
    gap = torch.where(torch.isnan(a) & torch.isnan(e), 0.0, (a - e).abs()).nan_to_num(nan=float("inf"))
    index = tuple(int(i) for i in torch.unravel_index(gap.argmax(), gap.shape))
    at = index if len(index) > 1 else index[0]
    wrong = int((~torch.isclose(a, e, atol=atol, rtol=rtol, equal_nan=True)).sum())
    value = f"got {a[index].item():.6g}" + (f" where {e[index].item():.6g} is expected" if reveal else "")
    return f"{wrong} of {a.numel()} values differ; the largest difference is at index {at}: {value}"


def check(actual, expected, name: str = "answer", atol: float = 1e-5, rtol: float = 1e-4,
          hint: str | None = None, reveal: bool = True) -> None:
    """Compare an exercise's answer with the expected value and say so.

    Tensors must match in shape and (within ``atol``/``rtol``) in value; Python floats
    within the same tolerance; anything else must be equal. Prints ``✓ name``, or raises
    :class:`CheckFailed` (an AssertionError) saying what differs (for big tensors: how many
    values and the largest difference, not the tensors), followed by ``hint``. With
    ``reveal=False`` the message never shows the expected value (for exercises whose point
    is to find it).
    """
    __tracebackhide__ = True
    if is_placeholder(actual):
        print(f"◻ {name}: {NOT_ANSWERED}")
        return

    def fail(what: str):
        message = f"{name}: {what}"
        raise CheckFailed(message + (f"\nhint: {hint}" if hint else ""))

    expects_number = isinstance(expected, (int, float)) and not isinstance(expected, bool)
    if isinstance(actual, torch.Tensor) and expects_number:
        fail(f"expected a Python number, got {_describe(actual)} (use .item())")
    if isinstance(expected, torch.Tensor) or isinstance(actual, torch.Tensor):
        if not isinstance(actual, torch.Tensor):
            fail(f"expected a tensor, got {_describe(actual)}")
        expected = torch.as_tensor(expected)
        if actual.shape != expected.shape:
            fail(f"shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
        a, e = actual.detach().cpu(), expected.detach().cpu()
        if e.dtype == torch.bool and a.dtype != torch.bool:
            fail(f"expected a boolean tensor (a mask, dtype torch.bool), got dtype {a.dtype}")
        if e.dtype == torch.bool:
            ok = torch.equal(a, e)
        else:
            ok = torch.allclose(a.double(), e.double(), atol=atol, rtol=rtol, equal_nan=True)
        if not ok:
            dtypes = f" (your dtype is {a.dtype}, expected {e.dtype})" if a.dtype != e.dtype else ""
            fail(f"wrong values{dtypes}: {_where_it_differs(a, e, reveal, atol, rtol)}")
    elif isinstance(expected, float) or isinstance(actual, float):
        if not isinstance(actual, (int, float)) or isinstance(actual, bool):
            fail(f"expected a Python number, got {_describe(actual)}")
        if not abs(actual - expected) <= atol + rtol * abs(expected):
            fail(f"got {actual}" + (f", expected {expected}" if reveal else ", which is not right"))
    elif actual != expected:
        if reveal and type(actual) is not type(expected) and not (
                isinstance(actual, int) and isinstance(expected, int)):
            fail(f"expected a {type(expected).__name__}, got {_describe(actual)}")
        fail(f"got {actual!r}" + (f", expected {expected!r}" if reveal else ", which is not right"))
    print(f"✓ {name}")
