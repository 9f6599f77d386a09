import pytest
import torch

from helpers.check import (
    CheckFailed,
    call_learner,
    check,
    expect_error,
    expect_warning,
    fail,
    forbidding,
    hint_for,
    require_int,
)


def test_expect_error_prints_the_error_and_swallows_it(capsys):
    """Bug caught: expect_error letting the expected error stop 'Run All', or printing more than its type
    and first line."""
    with expect_error(AttributeError):
        torch.linespace(0, 1)  # a function that does not exist
    assert capsys.readouterr().out == "AttributeError: module 'torch' has no attribute 'linespace'\n"


def test_expect_error_fails_when_nothing_goes_wrong():
    """Bug caught: a pitfall cell that stopped failing passing silently."""
    with pytest.raises(AssertionError, match="expected TypeError, but the code ran without error"):
        with expect_error(TypeError):
            torch.linspace(0, 1, 3)


def test_expect_error_lets_other_errors_through():
    """Bug caught: expect_error swallowing an error of another kind than the one named."""
    with pytest.raises(ZeroDivisionError):
        with expect_error(TypeError):
            _ = 1 / 0


def test_expect_warning(capsys):
    """Bug caught: expect_warning printing the whole message, or passing when no warning came."""
    import warnings

    with expect_warning(UserWarning):
        warnings.warn("careful\nsecond line", UserWarning, stacklevel=1)
    assert capsys.readouterr().out == "UserWarning: careful\n"
    with pytest.raises(AssertionError, match="expected a UserWarning"):
        with expect_warning(UserWarning):
            pass


def test_check_accepts_right_answers(capsys):
    """Bug caught: check refusing a right answer within float tolerance, an int, or a list for a bool
    tensor."""
    check(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-7]), "close")
    check(3, 3, "int")
    check(0.1 + 0.2, 0.3, "float")
    check(torch.tensor([True, False]), [True, False], "mask")
    assert capsys.readouterr().out == "✓ close\n✓ int\n✓ float\n✓ mask\n"


@pytest.mark.parametrize("actual, expected, message", [
    (torch.zeros(2, 3), torch.zeros(3, 2), r"shape \(2, 3\), expected \(3, 2\)"),
    (torch.ones(2), torch.zeros(2), "got"),
    ([0, 0], torch.zeros(2), "expected a tensor"),
    (0.5, 0.25, "got 0.5, expected 0.25"),
    ((2, 3), (3, 2), r"got \(2, 3\), expected \(3, 2\)"),
])
def test_check_rejects_wrong_answers(actual, expected, message):
    """Bug caught: check accepting a wrong shape, wrong values, a list for a tensor, or a wrong tuple."""
    with pytest.raises(AssertionError, match=message):
        check(actual, expected)


def test_expect_warning_repeats_torchs_once_only_warnings_without_build_paths(capsys):
    """Bug caught: torch's once-per-process warnings missing on a second run, a build-path note kept, or
    warn_always left on."""
    for _ in range(2):  # PyTorch shows this warning once per process unless told otherwise
        with expect_warning(UserWarning):
            y = torch.ones(2, requires_grad=True) * 2
            _ = y.grad  # .grad of a non-leaf tensor
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]
    assert lines[0].startswith("UserWarning: The .grad attribute of a Tensor that is not a leaf")
    assert "Triggered internally" not in lines[0]
    assert not torch.is_warn_always_enabled()


def test_expect_error_drops_terminal_colour_codes(capsys):
    """Bug caught: terminal colour codes printed as garbage in a notebook's error line."""
    with expect_error(ValueError):
        raise ValueError("plain \x1b[1mbold\x1b[0m text")
    assert capsys.readouterr().out == "ValueError: plain bold text\n"


# ------------------------------------------------------------------------------ exercises
from helpers.check import clean_message, exercise, is_placeholder  # noqa: E402


def _unanswered(l1, l2):
    ...


class _Unwritten(torch.nn.Module):
    ...  # the learner has not filled in the class body yet


class _UnwrittenDataset(torch.utils.data.Dataset):
    ...


def _answered(l1, l2):
    return l1


class _Written(torch.nn.Module):
    def forward(self, x):
        return x


@pytest.mark.parametrize("value, expected", [
    (..., True), (_unanswered, True), (_Unwritten, True), (_UnwrittenDataset, True),
    (None, False), (0, False), (torch.zeros(0), False), (_answered, False), (_Written, False),
    (lambda x: x, False),
])
def test_is_placeholder_tells_the_untouched_answer_from_any_real_one(value, expected):
    """Bug caught: an empty def/class (a Dataset subclass too) not seen as unanswered, or a real answer
    (None, 0, a lambda) taken for one."""
    assert is_placeholder(value) is expected


@exercise("Exercise 9")
def _check_ex9(shape, total):
    check(shape, (2, 3), "shape")
    check(total, torch.tensor([1.0, 2.0]), "total")


def test_exercise_on_a_placeholder_says_not_answered_yet_and_runs_no_check(capsys):
    """Bug caught: checks run on a placeholder (a traceback before the learner has tried), or the
    unanswered names not listed."""
    assert _check_ex9(..., torch.tensor([1.0, 2.0])) is None  # no "Out: False" under the cell
    out = capsys.readouterr().out
    assert out == "◻ Exercise 9: not answered yet (replace the ... in `shape`)\n"
    _check_ex9(..., ...)
    assert "`shape`, `total`" in capsys.readouterr().out


def test_exercise_with_a_right_answer_prints_a_tick_per_check(capsys):
    """Bug caught: a right answer printing no ticks, or an Out: value under the checking cell."""
    assert _check_ex9((2, 3), torch.tensor([1.0, 2.0])) is None
    assert capsys.readouterr().out == "✓ shape\n✓ total\n"


@pytest.mark.parametrize("total, message", [
    (torch.tensor([[1.0, 2.0]]), r"total: shape \(1, 2\), expected \(2,\)"),
    (torch.tensor([1.0, 5.0]), r"total: wrong values"),
    ([1.0, 2.0], r"total: expected a tensor, got list"),
])
def test_exercise_with_a_wrong_answer_fails_with_what_differs(total, message, capsys):
    """Bug caught: a wrong answer failing without saying which check and what differs, or later checks
    still ticked."""
    with pytest.raises(AssertionError, match=message):
        _check_ex9((2, 3), total)
    assert "✓ total" not in capsys.readouterr().out


def test_exercise_wants_every_answer():
    """Bug caught: a checking call with too few answers running half its checks."""
    with pytest.raises(TypeError, match="takes 2 answers"):
        _check_ex9((2, 3))


def test_exercise_refuses_an_answer_too_many():
    """Bug caught: only too few answers refused, so an extra one (a learner passing two cells'
    answers to one check) is silently ignored."""
    with pytest.raises(TypeError, match=r"Exercise 9: the check takes 2 answers \(shape, total\), got 3"):
        _check_ex9((2, 3), torch.tensor([1.0, 2.0]), 5)


def test_check_gives_the_hint_and_can_keep_the_answer_secret():
    """Bug caught: the hint dropped, or reveal=False still printing the expected value."""
    with pytest.raises(AssertionError) as info:
        check(535000, 535818, "parameters", hint="count the biases too", reveal=False)
    assert "hint: count the biases too" in str(info.value)
    assert "535818" not in str(info.value) and "535000" in str(info.value)
    with pytest.raises(AssertionError) as info:
        check(torch.ones(2), torch.tensor([3.0, 4.0]), "v", reveal=False)
    assert "4." not in str(info.value)
    with pytest.raises(AssertionError) as info:
        check((2, 3), None, "shape (c)", reveal=False)
    assert "None" not in str(info.value)


def test_check_names_a_wrong_dtype_and_a_tensor_where_a_number_is_wanted():
    """Bug caught: an int tensor for a float one, or a tensor or string for a number, failing without
    saying so."""
    with pytest.raises(AssertionError, match="your dtype is torch.int64, expected torch.float32"):
        check(torch.tensor([1, 2]), torch.tensor([1.5, 2.0]))
    with pytest.raises(AssertionError, match=r"expected a Python number, got a tensor .*\(use \.item\(\)\)"):
        check(torch.tensor(0.5), 0.5)
    with pytest.raises(AssertionError, match="expected a Python number, got str '0.5'"):
        check("0.5", 0.5)


def test_check_on_a_placeholder_says_not_answered_yet(capsys):
    """Bug caught: check comparing ... with the answer instead of saying 'not answered yet'."""
    check(..., 3, "three")
    assert capsys.readouterr().out == "◻ three: not answered yet\n"


def test_clean_message_keeps_the_lines_asked_for():
    """Bug caught: clean_message keeping colour codes, torch's build-path note or blank lines, or the wrong
    number of lines."""
    message = "\x1b[31mfirst\x1b[0m (Triggered internally at /src/x.cpp:1.)\n\n  second\nthird"
    assert clean_message(message) == "first"
    assert clean_message(message, max_lines=None) == "first\n  second\nthird"


def test_a_failed_exercise_renders_as_one_cross_line_and_its_hint():
    """Bug caught: a wrong answer showed ~30 lines of traceback before the one useful line."""
    from helpers.check import CheckFailed

    with pytest.raises(CheckFailed) as info:
        _check_ex9((3, 2), torch.tensor([1.0, 2.0]))
    assert info.value._render_traceback_() == [
        "\x1b[31m✗ Exercise 9: shape: got (3, 2), expected (2, 3)\x1b[0m"]
    with pytest.raises(CheckFailed) as info:
        check(535000, 535818, "parameters", hint="count the biases too", reveal=False)
    assert info.value._render_traceback_()[1:] == ["hint: count the biases too"]


def test_a_big_tensor_that_differs_is_described_not_printed():
    """Bug caught: a wrong answer printed both tensors, about 90 lines."""
    expected = torch.arange(600.).view(2, 3, 10, 10)
    wrong = expected.clone()
    wrong[1, 2, 3, 4] += 5
    wrong[0, 0, 0, 0] += 1
    with pytest.raises(AssertionError) as info:
        check(wrong, expected, "the output")
    message = str(info.value)
    assert message == ("the output: wrong values: 2 of 600 values differ; the largest difference is at index "
                       "(1, 2, 3, 4): got 539 where 534 is expected")
    with pytest.raises(AssertionError) as info:
        check(wrong, expected, "the output", reveal=False)
    assert "534" not in str(info.value) and "got 539" in str(info.value)


def test_the_model_answer_says_whose_answer_passed(capsys):
    """Bug caught: the folded solution's ✓ lines, under "not answered yet", read as the learner's."""
    _check_ex9.model_answer((2, 3), torch.tensor([1.0, 2.0]))
    assert capsys.readouterr().out == "The model answer to Exercise 9, checked:\n✓ shape\n✓ total\n"


# ------------------------------------------------------------- the pitfall helpers' edges
def test_expect_error_without_kinds_expects_an_exception_not_an_interrupt(capsys):
    """Bug caught: expect_error() catching BaseException, so Ctrl-C (KeyboardInterrupt) or
    sys.exit inside a pitfall cell is swallowed and 'Run All' goes on."""
    with expect_error():
        int("x")
    assert capsys.readouterr().out == "ValueError: invalid literal for int() with base 10: 'x'\n"
    with pytest.raises(KeyboardInterrupt):
        with expect_error():
            raise KeyboardInterrupt
    with pytest.raises(SystemExit):
        with expect_error():
            raise SystemExit(1)


def _deprecated():
    import warnings

    warnings.warn("old_api is deprecated", DeprecationWarning, stacklevel=2)


def test_expect_warning_shows_warnings_that_filters_would_hide(capsys):
    """Bug caught: expect_warning without simplefilter("always"), so a DeprecationWarning (hidden
    by Python's default filters outside __main__) is reported as 'none was raised'."""
    import warnings

    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("ignore", DeprecationWarning)  # Python's own default for library code
        for _ in range(2):  # and again: no once-per-location registry either
            with expect_warning(DeprecationWarning):
                _deprecated()
    assert capsys.readouterr().out == "DeprecationWarning: old_api is deprecated\n" * 2


class _CourseWarning(UserWarning):
    pass


def test_expect_warning_matches_subclasses_by_default_and_prints_the_first(capsys):
    """Bug caught: expect_warning matching only the exact class (or UserWarning by default), so a
    RuntimeWarning fails expect_warning(); or it printing the last warning instead of the first."""
    import warnings

    with expect_warning():
        warnings.warn("first", RuntimeWarning, stacklevel=1)
        warnings.warn("second", UserWarning, stacklevel=1)
    with expect_warning(UserWarning):
        warnings.warn("a subclass", _CourseWarning, stacklevel=1)
    assert capsys.readouterr().out == "RuntimeWarning: first\n_CourseWarning: a subclass\n"


def test_expect_warning_fails_on_a_warning_of_another_kind():
    """Bug caught: any warning accepted, so a pitfall that now warns about something else passes."""
    import warnings

    with pytest.raises(AssertionError, match="expected a RuntimeWarning, but none was raised"):
        with expect_warning(RuntimeWarning):
            warnings.warn("not this one", UserWarning, stacklevel=1)


def test_expect_warning_repeats_a_torch_warning_shown_once_per_process(capsys):
    """Bug caught: torch.set_warn_always(True) dropped, so a TORCH_WARN_ONCE warning (x.T on a 3-d
    tensor) shows the first time the cell runs and fails the check the second time."""
    for _ in range(2):
        with expect_warning(UserWarning):
            _ = torch.ones(2, 3, 4).T
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0] == lines[1] and "x.T" in lines[0]
    assert not torch.is_warn_always_enabled()


def test_a_decorated_check_returns_nothing_and_keeps_its_title(capsys):
    """Bug caught: the decorated check returning its checking function's value (an Out: line under
    the cell), or losing .title, which the lessons' check modules read."""
    @exercise("Exercise 10")
    def returns_something(answer):
        check(answer, 1, "one")
        return "a value the notebook would print"

    assert returns_something(1) is None
    assert returns_something.title == "Exercise 10" and _check_ex9.title == "Exercise 9"
    assert capsys.readouterr().out == "✓ one\n"


def test_check_tolerances_are_atol_for_small_values_and_rtol_for_large_ones():
    """Bug caught: atol and rtol swapped (1e-4 absolute, 1e-5 relative), which passes a wrong small
    value and fails a right large one; or NaN where NaN is expected counted as a difference."""
    check(torch.tensor([1000.05]), torch.tensor([1000.0]))  # within rtol * 1000 = 0.1
    with pytest.raises(AssertionError, match="wrong values"):
        check(torch.tensor([5e-5]), torch.tensor([0.0]))  # beyond atol = 1e-5
    check(torch.tensor([float("nan"), 1.0]), torch.tensor([float("nan"), 1.0]), "with nan")


def test_a_six_value_tensor_is_still_printed_whole():
    """Bug caught: the 'few values' threshold off by one, so a 6-value answer is summarised."""
    with pytest.raises(AssertionError) as info:
        check(torch.zeros(6), torch.ones(6), "v")
    assert str(info.value) == "v: wrong values: got [0.0, 0.0, 0.0, 0.0, 0.0, 0.0], expected [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]"


def test_values_within_tolerance_are_not_counted_as_differences():
    """Bug caught: every value with a nonzero gap counted as wrong, though a 1e-7 rounding is right."""
    expected = torch.arange(1.0, 11.0)
    answer = expected * (1 + 1e-7)
    answer[4] += 1.0
    with pytest.raises(AssertionError, match=r"^v: wrong values: 1 of 10 values differ; the largest difference "
                                              r"is at index 4: got 6 where 5 is expected$"):
        check(answer, expected, "v")


def test_the_count_of_differences_uses_the_checks_own_tolerance():
    """Bug caught: values near 0 that check() accepts (within atol=1e-5) counted as differing in its
    message, which then blames more values than are wrong."""
    expected = torch.zeros(10)
    answer = torch.full((10,), 1e-7)
    answer[4] = 1.0
    with pytest.raises(AssertionError, match="wrong values: 1 of 10 values differ"):
        check(answer, expected, "v")


def test_check_of_a_float_refuses_a_bool_uses_rtol_and_can_keep_the_answer_secret():
    """Bug caught: True accepted for 1.0, a float compared with atol alone (a right 1000.05 refused),
    or reveal=False still printing the expected float."""
    with pytest.raises(AssertionError, match="expected a Python number, got bool True"):
        check(True, 1.0)
    check(1000.05, 1000.0, "large")  # within rtol * 1000 = 0.1
    with pytest.raises(AssertionError) as info:
        check(0.5, 0.25, "p", reveal=False)
    assert str(info.value) == "p: got 0.5, which is not right"


def test_a_tensor_where_a_number_is_wanted_is_described_with_its_dtype():
    """Bug caught: the description of a wrong-type answer without its dtype (an int tensor for a
    float answer then looks right)."""
    with pytest.raises(AssertionError) as info:
        check(torch.tensor(2), 2.0, "n")
    assert str(info.value) == ("n: expected a Python number, got a tensor of shape () and dtype torch.int64 "
                               "(use .item())")


def test_a_mask_is_wanted_where_a_mask_is_expected():
    """Bug caught: any tensor compared as bools against a mask, so probabilities such as
    [0.0, 0.9] passed for [False, True]."""
    with pytest.raises(AssertionError, match="expected a boolean tensor"):
        check(torch.tensor([0.0, 0.9]), torch.tensor([False, True]), "mask")
    check(torch.tensor([False, True]), [False, True], "mask")
    check(torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), "numbers")  # numbers still compare as numbers


def test_call_learner_turns_an_error_in_the_learners_code_into_one_cross_line():
    """Bug caught: a learner's exception escaping as a raw traceback (or a CheckFailed from a
    nested check being re-wrapped, which would lose its own message)."""
    assert call_learner("double(2)", lambda x: 2 * x, 2, hint="h") == 4
    with pytest.raises(CheckFailed) as info:
        call_learner("double([1])", lambda x: x.shape, [1], hint="use a tensor")
    assert info.value.message.splitlines() == [
        "double([1]) raised AttributeError: 'list' object has no attribute 'shape'", "hint: use a tensor"]
    def nested_check():
        raise CheckFailed("inner")

    with pytest.raises(CheckFailed, match="^inner$"):
        call_learner("f()", nested_check, hint="h")


def test_forbidding_refuses_the_named_functions_inside_the_block_only():
    """Bug caught: a patch that leaks out of the block (F.conv2d broken for the rest of the
    lesson), or a forbidden call that still runs."""
    x, w = torch.ones(1, 1, 3, 3), torch.ones(1, 1, 2, 2)
    with forbidding(["torch.nn.functional.conv2d"], "my_conv", hint="sum products"):
        with pytest.raises(CheckFailed) as info:
            torch.nn.functional.conv2d(x, w)
    assert info.value.message == ("my_conv calls F.conv2d, which this exercise asks you to do without\n"
                                  "hint: sum products")
    assert torch.nn.functional.conv2d(x, w).sum().item() == 16.0


def test_fail_raises_the_line_and_its_hint():
    """Bug caught: a hint dropped from the ✗ line."""
    with pytest.raises(CheckFailed) as info:
        fail("got 3, expected an int", "count again")
    assert info.value._render_traceback_()[1:] == ["hint: count again"]


def test_hint_for_names_a_known_slip_of_the_same_type_only():
    """Bug caught: a slip's hint shown for a right answer of another type (2.0 for the slip 2),
    or the default hint hiding a known slip."""
    slips = {2: "forgot the bias"}
    assert hint_for(2, slips, "count again") == "forgot the bias"
    assert hint_for(2.0, slips, "count again") == "count again"
    assert hint_for(3, slips, "count again") == "count again"


@pytest.mark.parametrize("answer", [2.0, True, "2", None])
def test_require_int_refuses_what_is_not_a_python_int(answer):
    """Bug caught: a float count (from /) or a bool passing as an int."""
    require_int(2, "the count", "use //")
    with pytest.raises(CheckFailed, match="the count should be a Python int"):
        require_int(answer, "the count", "use //")
