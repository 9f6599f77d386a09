"""The exercise checks of each lesson, one module per lesson (``lesson05`` ...).

A lesson imports its module once in the set-up cell, ``from helpers.exercises import lesson05
as checks``, and each check cell is one call, ``checks.ex1(my_conv2d)``. The checks' code
lives here so that reading the cell under a question does not give its answer away: the
expected values are computed in these functions, out of the learner's sight. Each check works
right after the set-up cell (it needs nothing else from the notebook), runs no check on a
placeholder, rejects the wrong answers learners really give (``tests/test_exercises_NN.py`` feeds
each check at least one), and shows a failure as one ``✗`` line with a hint
(:class:`helpers.check.CheckFailed`). A folded solution calls ``checks.ex1.model_answer(...)``.
"""
