import pytest
import torch

from helpers.check import check, expect_error, expect_warning


def test_expect_error_prints_the_error_and_swallows_it(capsys):
    with expect_error(AttributeError):
        torch.linespace(0, 1)  # a function that does not exist
    assert capsys.readouterr().out == "AttributeError: module 'torch' has no attribute 'linespace'\n"


def test_expect_error_fails_when_nothing_goes_wrong():
    with pytest.raises(AssertionError, match="expected TypeError, but the code ran without error"):
        with expect_error(TypeError):
            torch.linspace(0, 1, 3)


def test_expect_error_lets_other_errors_through():
    with pytest.raises(ZeroDivisionError):
        with expect_error(TypeError):
            _ = 1 / 0


def test_expect_warning(capsys):
    import warnings

    with expect_warning(UserWarning):
        warnings.warn("careful\nsecond line", UserWarning, stacklevel=1)
    assert capsys.readouterr().out == "UserWarning: careful\n"
    with pytest.raises(AssertionError, match="expected a UserWarning"):
        with expect_warning(UserWarning):
            pass


def test_check_accepts_right_answers(capsys):
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
    with pytest.raises(AssertionError, match=message):
        check(actual, expected)


def test_expect_warning_repeats_torchs_once_only_warnings_without_build_paths(capsys):
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
    assert is_placeholder(value) is expected


@exercise("Exercise 9")
def _check_ex9(shape, total):
    check(shape, (2, 3), "shape")
    check(total, torch.tensor([1.0, 2.0]), "total")


def test_exercise_on_a_placeholder_says_not_answered_yet_and_runs_no_check(capsys):
    assert _check_ex9(..., torch.tensor([1.0, 2.0])) is None  # no "Out: False" under the cell
    out = capsys.readouterr().out
    assert out == "◻ Exercise 9: not answered yet (replace the ... in `shape`)\n"
    _check_ex9(..., ...)
    assert "`shape`, `total`" in capsys.readouterr().out


def test_exercise_with_a_right_answer_prints_a_tick_per_check(capsys):
    assert _check_ex9((2, 3), torch.tensor([1.0, 2.0])) is None
    assert capsys.readouterr().out == "✓ shape\n✓ total\n"


@pytest.mark.parametrize("total, message", [
    (torch.tensor([[1.0, 2.0]]), r"total: shape \(1, 2\), expected \(2,\)"),
    (torch.tensor([1.0, 5.0]), r"total: wrong values"),
    ([1.0, 2.0], r"total: expected a tensor, got list"),
])
def test_exercise_with_a_wrong_answer_fails_with_what_differs(total, message, capsys):
    with pytest.raises(AssertionError, match=message):
        _check_ex9((2, 3), total)
    assert "✓ total" not in capsys.readouterr().out


def test_exercise_wants_every_answer():
    with pytest.raises(TypeError, match="takes 2 answers"):
        _check_ex9((2, 3))


def test_check_gives_the_hint_and_can_keep_the_answer_secret():
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
    with pytest.raises(AssertionError, match="your dtype is torch.int64, expected torch.float32"):
        check(torch.tensor([1, 2]), torch.tensor([1.5, 2.0]))
    with pytest.raises(AssertionError, match=r"expected a Python number, got a tensor .*\(use \.item\(\)\)"):
        check(torch.tensor(0.5), 0.5)
    with pytest.raises(AssertionError, match="expected a Python number, got str '0.5'"):
        check("0.5", 0.5)


def test_check_on_a_placeholder_says_not_answered_yet(capsys):
    check(..., 3, "three")
    assert capsys.readouterr().out == "◻ three: not answered yet\n"


def test_clean_message_keeps_the_lines_asked_for():
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
