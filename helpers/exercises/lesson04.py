"""The checks of lesson 04's exercises (multilayer perceptrons and backpropagation)."""

import torch
import torch.nn.functional as F
from torch import nn

from ..check import call_learner, check, exercise, forbidding

# What Exercise 2 must do without: autograd computing the gradient for you.
_AUTOGRAD = ("torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward")


@exercise("Exercise 1")
def ex1(merge_linear):
    hint = "section 2 works out the one layer that two linear layers make: its weight and its bias"
    g = torch.Generator().manual_seed(1)
    for n_in, n_mid, n_out in [(6, 10, 4), (3, 5, 2)]:                  # [b, in] => [b, mid] => [b, out]
        l1, l2 = nn.Linear(n_in, n_mid), nn.Linear(n_mid, n_out)
        with torch.no_grad():
            for p in (*l1.parameters(), *l2.parameters()):
                p.copy_(torch.randn(p.shape, generator=g))
        x = torch.randn(7, n_in, generator=g)
        expected = l2(l1(x)).detach()
        merged = call_learner(f"merge_linear on Linear({n_in}, {n_mid}) and Linear({n_mid}, {n_out})",
                              merge_linear, l1, l2, hint=hint)
        check(isinstance(merged, nn.Linear), True, f"merge_linear returns one nn.Linear ({n_in}->{n_mid}->{n_out})",
              hint="build a new nn.Linear(l1.in_features, l2.out_features) and fill in its weight and bias "
                   "(an nn.Sequential of the two layers is still two layers)")
        check(tuple(merged.weight.shape), (n_out, n_in), "the merged weight's shape (out, in)",
              hint="Linear(in, out).weight has shape (out, in): which order of the two weights gives that?")
        check(merged.bias is not None, True, "the merged layer has a bias",
              hint="the two layers' biases do not vanish when they merge")
        got = call_learner("the merged layer", merged, x, hint=hint)
        check(got, expected, "merged(x) == l2(l1(x))",
              hint=hint + "; l1's bias passes through l2's weight on its way to the output")


@exercise("Exercise 2")
def ex2(cross_entropy_grad):
    g = torch.Generator().manual_seed(2)
    for n, classes in [(5, 4), (3, 7)]:
        Z = torch.randn(n, classes, generator=g, requires_grad=True)
        y = torch.randint(0, classes, (n,), generator=g)
        (expected,) = torch.autograd.grad(F.cross_entropy(Z, y), Z)    # autograd gives the reference
        hint = "softmax over the classes of each example, minus the one-hot targets, and the mean's 1/N"
        with forbidding(_AUTOGRAD, "cross_entropy_grad",
                        hint="write the formula of the exercise's text with tensor operations"):
            got = call_learner(f"cross_entropy_grad on a ({n}, {classes}) batch",
                               cross_entropy_grad, Z.detach().clone(), y.clone(), hint=hint)
        if isinstance(got, torch.Tensor) and got.shape == Z.shape:
            if torch.allclose(got, n * expected, atol=1e-6):
                hint = "N times too big: F.cross_entropy takes the mean over the batch"
            elif torch.allclose(got, -expected, atol=1e-6):
                hint = "the sign is turned round: which of the two terms is subtracted?"
        check(got, expected, f"cross_entropy_grad on a ({n}, {classes}) batch", hint=hint)


@exercise("Exercise 3")
def ex3(n_params):
    check(type(n_params).__name__, "int", "the answer is a Python int",
          hint="write the count as arithmetic on integers, one term per layer")
    sizes = (784, 512, 256, 10)
    layers = [nn.Linear(n_in, n_out) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    weights = sum(layer.weight.numel() for layer in layers)
    expected = sum(p.numel() for layer in layers for p in layer.parameters())
    hint = "each Linear(in, out) holds in·out weights and out biases; 784-512-256-10 has three Linear layers"
    if n_params == weights:
        hint = "that counts the weights only: every layer has a bias too"
    check(n_params, expected, "the number of trainable parameters of the 784-512-256-10 MLP", reveal=False, hint=hint)


@exercise("Exercise 4")
def ex4(Scale):
    layer = call_learner("Scale()", Scale,
                         hint="create the nn.Parameter from a float tensor, e.g. torch.tensor(1.0)")
    check([name for name, _ in layer.named_parameters()], ["alpha"], "alpha is Scale's one registered parameter",
          hint="only an nn.Parameter assigned to self is registered (section 8, 'Your own layer')")
    check(layer.alpha.numel(), 1, "alpha is one number", hint="a 0-d tensor such as torch.tensor(1.0)")
    check(layer.alpha.detach().reshape(-1), torch.tensor([1.0]), "alpha starts at 1.0",
          hint="the value you wrap in nn.Parameter is alpha's starting value")
    with torch.no_grad():
        layer.alpha.fill_(2.0)
    x = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    out = call_learner("Scale()(x)", layer, x, hint="forward(x) returns self.alpha * x")
    check(out, 2.0 * x, "Scale()(x) == alpha * x once alpha is 2", hint="forward must multiply x by self.alpha")
    grad_hint = "use self.alpha itself in forward (no .item(), no .detach()) so that autograd sees it"
    check(isinstance(out, torch.Tensor) and out.requires_grad, True, "the output depends on alpha for autograd",
          hint=grad_hint)
    out.sum().backward()
    check(layer.alpha.grad is not None, True, "alpha receives a gradient", hint=grad_hint)
    check(layer.alpha.grad.reshape(-1), x.sum().reshape(1), "d/dα of sum(α·x) = sum(x)")


@exercise("Exercise 5")
def ex5(theta2_by_hand):
    param = nn.Parameter(torch.tensor([1.0, -2.0]))                     # θ0; PyTorch's SGD gives the reference
    sgd = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    for grad in (torch.tensor([0.5, 0.5]), torch.tensor([-1.0, 2.0])):
        param.grad = grad
        sgd.step()
    check(theta2_by_hand, param.detach(), "θ2 after two momentum steps", reveal=False,
          hint="the buffer v carries the first gradient into the second step, and every step moves θ by −η·v")


@exercise("Exercise 6")
def ex6(count_dead):
    hint = "a unit is a column of h, and it is dead only if it is zero for every input"
    int_hint = "return a Python int: int(...) or .item() turns a one-number tensor into one"
    h_small = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0],
                            [0.0, 0.0, 2.0, 0.0, 0.0],
                            [0.0, 3.0, 0.0, 0.0, 4.0]])                  # 3 inputs, 5 units: 0 and 3 are dead
    got = call_learner("count_dead on a 3×5 example", count_dead, h_small.clone(), hint=hint)
    check(type(got).__name__, "int", "count_dead returns a Python int", hint=int_hint)
    check(got, 2, "count_dead on a 3×5 example", reveal=False, hint=hint)
    g = torch.Generator().manual_seed(6)
    h_big = torch.relu(torch.randn(500, 64, generator=g))             # [inputs, units]
    dead = torch.randperm(64, generator=g)[:7]
    h_big[:, dead] = 0.0                                               # these units, and no others, are dead
    h_big[:-1, dead[0] + 1 if dead[0] < 63 else dead[0] - 1] = 0.0     # a neighbour alive for one input only
    got = call_learner("count_dead on 500 inputs × 64 units", count_dead, h_big.clone(), hint=hint)
    check(type(got).__name__, "int", "count_dead returns a Python int", hint=int_hint)
    check(got, int((h_big == 0).all(dim=0).sum()), "count_dead on 500 inputs × 64 units", reveal=False, hint=hint)
