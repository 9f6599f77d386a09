"""Lesson 02's exercise checks: the model answer passes, the wrong answers learners really
give fail (tests/exercise_harness.py). A check that let one through would teach the learner
that the wrong answer is right.
"""
import math

import torch
import torch.nn.functional as F
from exercise_harness import exercise_tests
from torch import nn

from helpers.exercises import lesson02


# ---------------------------------------------------------------- Exercise 1: f'(x0) by autograd
def derivative(f, x0, backwards=1):
    x = torch.tensor(x0, requires_grad=True)
    y = f(x)
    for i in range(backwards):
        y.backward(retain_graph=i < backwards - 1)
    return x.grad


def finite_difference(f, x0, h=1e-3):
    return (f(torch.tensor(x0 + h)) - f(torch.tensor(x0 - h))) / (2 * h)


def value_not_derivative(f, x0):
    return f(torch.tensor(x0, requires_grad=True)).detach()


# ---------------------------------------------------------------- Exercise 3: f''(x0) by autograd
def second_derivative(f, x0):
    x = torch.tensor(x0, requires_grad=True)
    (d1,) = torch.autograd.grad(f(x), x, create_graph=True)
    (d2,) = torch.autograd.grad(d1, x)
    return d2.item()


def first_derivative_only(f, x0):
    x = torch.tensor(x0, requires_grad=True)
    (d1,) = torch.autograd.grad(f(x), x)
    return d1.item()


def second_backward_adds_to_grad(f, x0):
    x = torch.tensor(x0, requires_grad=True)
    f(x).backward(create_graph=True)           # x.grad = f'(x), with a graph
    x.grad.backward()                          # adds f''(x) to x.grad: f' + f''
    return x.grad.item()


def second_derivative_tensor(f, x0):
    x = torch.tensor(x0, requires_grad=True)
    (d1,) = torch.autograd.grad(f(x), x, create_graph=True)
    (d2,) = torch.autograd.grad(d1, x)
    return d2


# ---------------------------------------------------------------- Exercise 4: accumulation
def accumulated_grad(w, X, t, chunk_size, scale="share", zero_between=False, whole_chunks_only=False):
    n_rows = len(X) - len(X) % chunk_size if whole_chunks_only else len(X)
    n_chunks = math.ceil(len(X) / chunk_size)
    for first in range(0, n_rows, chunk_size):
        X_chunk, t_chunk = X[first:first + chunk_size], t[first:first + chunk_size]
        loss = F.mse_loss(X_chunk @ w, t_chunk)
        factor = {"share": len(X_chunk) / len(X), "none": 1.0, "per chunk": 1 / n_chunks}[scale]
        if zero_between and w.grad is not None:
            w.grad = None
        (loss * factor).backward()
    return w.grad


def whole_batch_once(w, X, t, chunk_size):
    F.mse_loss(X @ w, t).backward()
    return w.grad


# ---------------------------------------------------------------- Exercise 5: gradient descent
def gradient_descent(f, x0, lr, steps, clear=True, sign=-1, extra_steps=0, as_tensor=False):
    x = torch.tensor(x0, requires_grad=True)
    for _ in range(steps + extra_steps):
        f(x).backward()
        with torch.no_grad():
            x += sign * lr * x.grad
        if clear:
            x.grad.zero_()
    return x.detach() if as_tensor else x.item()


# ---------------------------------------------------------------- Exercise 6: freezing
def net_after(freeze=lambda net: net[0].requires_grad_(False), backward_first=False):
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    if backward_first:
        net(torch.randn(5, 4)).sum().backward()
    freeze(net)
    if not backward_first:
        net(torch.randn(5, 4)).sum().backward()
    return net


def trainable(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def with_count(net):
    """The answers of a learner who froze ``net`` so, and counted its trainable parameters right."""
    return net, trainable(net)


FROZEN = net_after()


# ---------------------------------------------------------------- Exercise 7: plain SGD, four minima
def sgd_end_point(f, start, lr, steps, make=lambda ps, lr: torch.optim.SGD(ps, lr=lr), zero_grad=True,
                  path=False):
    p = torch.tensor(start, requires_grad=True)
    optimizer = make([p], lr)
    points = [p.detach().clone()]
    for _ in range(steps):
        if zero_grad:
            optimizer.zero_grad()
        f(*p).backward()
        optimizer.step()
        points.append(p.detach().clone())
    return torch.stack(points) if path else p


LESSON02 = {
    lesson02.ex1: ((derivative,), {
        "the printed π typed in": (lambda f, x0: torch.tensor(math.pi),),
        "the hand formula of x² sin x": (lambda f, x0: torch.tensor(2 * x0 * math.sin(x0) + x0 ** 2 * math.cos(x0)),),
        "f(x0), not its derivative": (value_not_derivative,),
        "backward() twice: the gradient doubled": (lambda f, x0: derivative(f, x0, backwards=2),),
        "finite differences instead of autograd": (finite_difference,),
        "a Python float": (lambda f, x0: derivative(f, x0).item(),),
        "a tensor of shape [1]": (lambda f, x0: derivative(lambda x: f(x[0]), [x0]),),
    }),
    lesson02.ex2: ((torch.tensor([2.0, 2.0, 0.0]),), {
        "y.sum().backward(): v = [1, 1, 1]": (torch.tensor([2.0, 4.0, 6.0]),),
        "backward(v) run twice": (torch.tensor([4.0, 4.0, 0.0]),),
        "v times x, the 2 of 2x forgotten": (torch.tensor([1.0, 1.0, 0.0]),),
        "v itself": (torch.tensor([1.0, 0.5, 0.0]),),
        "the Jacobian, not vᵀJ": (torch.diag(torch.tensor([2.0, 4.0, 6.0])),),
        "a list": ([2.0, 2.0, 0.0],),
    }),
    lesson02.ex3: ((second_derivative,), {
        "the printed 27 typed in": (lambda f, x0: 27.0,),
        "the first derivative only": (first_derivative_only,),
        "x.grad after a second backward(): f' + f''": (second_backward_adds_to_grad,),
        "a tensor, not a Python float": (second_derivative_tensor,),
    }),
    lesson02.ex4: ((accumulated_grad,), {
        "one backward() on the whole batch": (whole_batch_once,),
        "each chunk's mean loss unscaled": (lambda *a: accumulated_grad(*a, scale="none"),),
        "divides by the number of chunks": (lambda *a: accumulated_grad(*a, scale="per chunk"),),
        "clears w.grad between chunks": (lambda *a: accumulated_grad(*a, zero_between=True),),
        "drops the short last chunk": (lambda *a: accumulated_grad(*a, whole_chunks_only=True),),
    }),
    lesson02.ex5: ((gradient_descent,), {
        "never clears x.grad": (lambda *a: gradient_descent(*a, clear=False),),
        "steps uphill: x += lr * grad": (lambda *a: gradient_descent(*a, sign=1),),
        "one step too many": (lambda *a: gradient_descent(*a, extra_steps=1),),
        "one step too few": (lambda *a: gradient_descent(*a, extra_steps=-1),),
        "returns a tensor, not a float": (lambda *a: gradient_descent(*a, as_tensor=True),),
    }),
    lesson02.ex6: ((FROZEN, trainable(FROZEN)), {
        "counts every parameter": (FROZEN, sum(p.numel() for p in FROZEN.parameters())),
        "counts the frozen ones": (FROZEN, sum(p.numel() for p in FROZEN[0].parameters())),
        "counts tensors, not numbers": (FROZEN, sum(1 for p in FROZEN.parameters() if p.requires_grad)),
        "a float": (FROZEN, float(trainable(FROZEN))),
        "freezes the weight only": with_count(net_after(lambda net: net[0].weight.requires_grad_(False))),
        "freezes the last layer": with_count(net_after(lambda net: net[2].requires_grad_(False))),
        "freezes after the backward pass": with_count(net_after(backward_first=True)),
    }),
    lesson02.ex7: ((sgd_end_point,), {
        "SGD with momentum 0.9": (lambda *a: sgd_end_point(*a, make=lambda ps, lr: torch.optim.SGD(
            ps, lr=lr, momentum=0.9)),),
        "Adam": (lambda *a: sgd_end_point(*a, make=lambda ps, lr: torch.optim.Adam(ps, lr=lr)),),
        "never calls zero_grad()": (lambda *a: sgd_end_point(*a, zero_grad=False),),
        "returns the path": (lambda *a: sgd_end_point(*a, path=True),),
        "a fixed lr of 0.01": (lambda f, start, lr, steps: sgd_end_point(f, start, 0.01, steps),),
        "one step too few": (lambda f, start, lr, steps: sgd_end_point(f, start, lr, steps - 1),),
        "returns the start": (lambda f, start, lr, steps: torch.tensor(start),),
    }),
}

test_model_answers, test_wrong_answers = exercise_tests(LESSON02)
