"""The shared shape of the exercise tests (tests/test_exercises_NN.py, one per lesson).

A lesson's table maps each check of ``helpers.exercises.lessonNN`` to its model answer and to
the wrong answers learners really give, each named after the mistake:

    LESSON05 = {lesson05.ex2: ((model_answer,), {"leaves BatchNorm out": (wrong_answer,), ...})}
    test_model_answers, test_wrong_answers = exercise_tests(LESSON05)

The model answer must pass (and the placeholder say "not answered yet"); every wrong answer must
fail with one ✗ line and at most a hint, never a traceback of the checking machinery.
"""
import pytest

from helpers.check import CheckFailed


def _name(check) -> str:
    return f"{check.__module__.split('.')[-1]}.{check.__name__}"


def exercise_tests(table: dict):
    models = [(check, model) for check, (model, _) in table.items()]
    wrongs = [(check, answers, mistake) for check, (_, wrong) in table.items() for mistake, answers in wrong.items()]

    @pytest.mark.parametrize("check, model", models, ids=[_name(c) for c, _ in models])
    def test_model_answers(check, model, capsys):
        check(*model)
        out = capsys.readouterr().out
        assert "✓" in out and "not answered" not in out, out
        check(*[...] * len(model))
        assert "not answered yet" in capsys.readouterr().out

    @pytest.mark.parametrize("check, answers, mistake", wrongs, ids=[f"{_name(c)}: {m}" for c, _, m in wrongs])
    def test_wrong_answers(check, answers, mistake):
        with pytest.raises(CheckFailed) as info:
            check(*answers)
        lines = info.value._render_traceback_()
        assert lines[0].startswith(f"\x1b[31m✗ {check.title}: "), lines
        assert all(line.startswith("hint: ") for line in lines[1:]), lines

    assert all(wrong for _, wrong in table.values()), "every check needs at least one wrong answer"
    return test_model_answers, test_wrong_answers
