"""The checks of lesson 02's exercises (autograd, gradient descent, optimisers).

Each check builds what it needs itself (its own functions, data and starting points), so it
works right after the notebook's set-up cell.
"""
import math

import numpy as np
import torch
from torch import nn

from ..check import check, exercise


def _himmelblau(x, y):
    return (x ** 2 + y - 11) ** 2 + (x + y ** 2 - 7) ** 2


# Himmelblau's four minima, in the order of Exercise 7's starts (0, 0), (-1, 1), (-1, -1), (1, -1).
_HIMMELBLAU_MINIMA = torch.tensor([[3.0, 2.0], [-2.805118, 3.131312], [-3.779310, -3.283186],
                                   [3.584428, -1.848126]], dtype=torch.float64)
_HIMMELBLAU_STARTS = [[0.0, 0.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]]


def _counting(f):
    """f, and a list that records, per call, whether its argument was a tensor that requires grad."""
    calls = []

    def counted(x):
        calls.append(isinstance(x, torch.Tensor) and x.requires_grad)
        return f(x)
    return counted, calls


@exercise("Exercise 1")
def ex1(derivative):
    # (f, its derivative by hand, where, what the learner is told)
    cases = [(lambda x: x ** 2 * torch.sin(x), lambda x: 2 * x * math.sin(x) + x ** 2 * math.cos(x), 1.2,
              "x² sin x at 1.2"),
             (lambda x: torch.exp(-x) * torch.cos(3 * x),
              lambda x: -math.exp(-x) * (math.cos(3 * x) + 3 * math.sin(3 * x)), 0.7, "e^(−x) cos 3x at 0.7"),
             (lambda x: x ** 3, lambda x: 3 * x ** 2, -2.0, "x³ at −2")]
    for f, by_hand, x0, what in cases:
        counted, calls = _counting(f)
        got = derivative(counted, x0)
        check(len(calls), 1, f"{what}: f is evaluated once",
              hint="autograd needs one forward pass through f, and no formula of your own")
        check(calls[0], True, f"{what}: f is evaluated on a tensor that requires grad",
              hint="autograd records only operations on tensors that require grad")
        check(got, torch.tensor(by_hand(x0)), f"{what}: the derivative", reveal=False,
              hint="return the gradient that one backward() leaves on the leaf you made, as a 0-d tensor")


@exercise("Exercise 2")
def ex2(ex2):
    x, v = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 0.5, 0.0])
    check(ex2, v * 2 * x, "vᵀJ for y = x², v = [1, 0.5, 0]", reveal=False,
          hint="(vᵀJ)_j = Σ_i v_i ∂y_i/∂x_j, and J is diagonal here; y.sum().backward() would use v = [1, 1, 1], "
               "and a second backward() on the same x adds to its .grad")


@exercise("Exercise 3")
def ex3(second_derivative):
    # (f, its second derivative by hand, where, what the learner is told)
    cases = [(lambda x: x ** 4, lambda x: 12 * x ** 2, 0.8, "x⁴ at 0.8"),
             (lambda x: x * torch.sin(x), lambda x: 2 * math.cos(x) - x * math.sin(x), 1.1, "x sin x at 1.1"),
             (lambda x: torch.exp(2 * x), lambda x: 4 * math.exp(2 * x), 0.3, "e^(2x) at 0.3")]
    for f, by_hand, x0, what in cases:
        check(second_derivative(f, x0), by_hand(x0), f"{what}: the second derivative, a Python float",
              reveal=False, hint="differentiate the first derivative, which needs a graph of its own "
                                 "(create_graph=True); .grad adds up everything backward() brings it")


@exercise("Exercise 4")
def ex4(accumulated_grad):
    gen = torch.Generator().manual_seed(4)
    for n, chunk_size in [(8, 4), (10, 4)]:                   # two halves; then chunks of 4, 4 and 2
        X, t = torch.randn(n, 3, generator=gen), torch.randn(n, generator=gen)   # [n, 3], [n]
        w = torch.randn(3, generator=gen, requires_grad=True)
        by_hand = 2 / n * X.T @ (X @ w.detach() - t)           # the full-batch MSE gradient, [3]
        gradients_received = []
        w.register_hook(gradients_received.append)            # runs once per backward() that reaches w
        grad = accumulated_grad(w, X, t, chunk_size)
        what = f"{n} samples in chunks of {chunk_size}"
        check(len(gradients_received), math.ceil(n / chunk_size), f"{what}: one backward() per chunk",
              hint="a single backward() on the whole batch is not accumulation; every row belongs to one "
                   "chunk, the short last one too")
        check(grad, by_hand, f"{what}: the accumulated gradient equals the full-batch gradient", reveal=False,
              hint="the full batch's loss is a mean over all its samples: how much of it is one chunk's mean? "
                   "And .grad must keep what the earlier chunks put there")


def _quartic(x):
    return x ** 4 - 3 * x ** 2 + x


def _bowl(x):
    return (x - 2) ** 2 + 1


@exercise("Exercise 5")
def ex5(gradient_descent):
    low, _, high = sorted(np.roots([4, 0, -6, 1]).real)          # where 4x³ − 6x + 1 = 0
    update = "per step: one backward(), the update x -= lr * x.grad under torch.no_grad(), then clear x.grad"
    check(gradient_descent(_quartic, -2.0, 0.01, 300), float(low),
          "from x = −2: the global minimum of x⁴ − 3x² + x", atol=1e-4, reveal=False, hint=update)
    check(gradient_descent(_quartic, 2.0, 0.01, 300), float(high),
          "from x = +2: the local minimum", atol=1e-4, reveal=False, hint=update)
    exact = 2 + (1 - 2 * 0.3) ** 8 * (-2.0 - 2)                 # x_k − 2 = (1 − 2η)^k (x_0 − 2)
    check(gradient_descent(_bowl, -2.0, 0.3, 8), exact, "8 steps on (x − 2)² + 1 end where the formula says",
          atol=1e-5, rtol=0, reveal=False, hint=update + "; exactly `steps` updates")


@exercise("Exercise 6")
def ex6(net, ex6):
    check([p.requires_grad for p in net.parameters()], [False, False, True, True],
          "requires_grad of net[0].weight, net[0].bias, net[2].weight, net[2].bias",
          hint="freezing a layer turns off requires_grad for all its parameters, its bias too, and for no "
               "other layer's")
    check([p.grad is not None for p in net.parameters()], [False, False, True, True],
          "which of them received a gradient",
          hint="freeze first, then one backward pass; run the cell that makes `net` again to start over")
    check(type(ex6).__name__, "int", "the answer is a Python int", hint="p.numel() is an int; so is their sum")
    check(ex6, sum(p.numel() for p in nn.Linear(8, 2).parameters()), "the number of trainable parameters",
          reveal=False, hint="count the numbers in the parameters that still require grad, biases included")


def _plain_sgd(f, start, lr, steps):
    p = torch.tensor(start, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        f(*p).backward()
        optimizer.step()
    return p.detach()


@exercise("Exercise 7")
def ex7(sgd_end_point):
    first_steps = sgd_end_point(_himmelblau, [0.0, 0.0], 0.005, 5)
    check(isinstance(first_steps, torch.Tensor), True, "the end point is a tensor",
          hint="return the parameter tensor itself, where it is after the last step")
    check(tuple(first_steps.shape), (2,), "the end point has shape [2]",
          hint="return where the parameter is after the last step, not the path")
    check(first_steps.detach(), _plain_sgd(_himmelblau, [0.0, 0.0], 0.005, 5),
          "5 steps with lr 0.005 from (0, 0) match plain SGD's", reveal=False,
          hint="Section 9's four-line loop, with plain SGD (no momentum, no Adam), and lr and steps taken "
               "from the arguments")
    ends = torch.stack([sgd_end_point(_himmelblau, start, 0.01, 200).detach()
                        for start in _HIMMELBLAU_STARTS]).double()   # [4 starts, 2]
    check(ends, _HIMMELBLAU_MINIMA, "from (0, 0), (−1, 1), (−1, −1), (1, −1), 200 steps with lr 0.01 reach "
                                    "the four minima", atol=1e-3, hint="each start lies in its own basin")

