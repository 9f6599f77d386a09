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
