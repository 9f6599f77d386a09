import enum
import errno
import json
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import data, models, train
from helpers.device import channels_last_is_safe


def _toy(n=64, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    y = x[:, :classes].argmax(1)  # a learnable rule
    return data.DeviceLoader(x, y, batch_size=16, shuffle=True)


def test_split_name_groups_splits_of_one_metric():
    """Bug caught: split_name splitting a metric without a split (lr, grad_norm, train) or returning
    (split, what)."""
    assert train.split_name("train_loss") == ("loss", "train")
    assert train.split_name("val_acc") == ("acc", "val")
    assert train.split_name("test_top_5") == ("top_5", "test")
    assert train.split_name("lr") == ("lr", "lr")
    assert train.split_name("grad_norm") == ("grad_norm", "grad_norm")
    assert train.split_name("train") == ("train", "train")


def test_fit_trains_a_real_mnist_mlp_to_93_percent(mirror):
    """Bug caught: a loop that runs but does not learn (no backprop or step), or a misreported accuracy.
    93 % after 3 epochs on 10 000 images (this run: 94.5 %). The same MLP without activations,
    a linear model, stays at 89-90 %: the bar needs working hidden layers, backprop and steps."""
    torch.manual_seed(0)
    train_loader, test_loader = data.device_loaders("MNIST", "cpu", batch_size=128, limit=10_000)
    model = models.MLP(784, [128], 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = train.fit(model, train_loader, optimizer, epochs=3, val_loader=test_loader, progress=False)
    assert history["epoch"] == [1, 2, 3]
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_acc"][-1] >= 0.93
    # The reported accuracy, computed again by hand, without fit's or evaluate's code.
    model.eval()
    with torch.no_grad():
        x = data.normalize(test_loader.images, *data.STATS["MNIST"])
        by_hand = (model(x).argmax(1) == test_loader.labels).double().mean().item()
    assert history["val_acc"][-1] == pytest.approx(by_hand)


class _Recorder(nn.Module):
    """A linear classifier with dropout that records, at every forward pass, its mode, whether
    autograd is recording, and its input's dtype and memory format."""

    def __init__(self, features=5, classes=3):
        super().__init__()
        self.linear = nn.Linear(features, classes)
        self.dropout = nn.Dropout(0.5)
        self.calls = []

    def forward(self, x):
        self.calls.append({"training": self.training, "grad": torch.is_grad_enabled(), "dtype": x.dtype})
        return self.dropout(self.linear(x.flatten(1)))


def test_fit_trains_in_train_mode_and_validates_in_eval_mode_without_autograd():
    """Bug caught: fit not switching back to train() after validating, or validating in train mode or with
    autograd on."""
    model = _Recorder()
    model.eval()  # left in eval mode by an earlier evaluation: fit must switch it back
    train.fit(model, _toy(n=64), torch.optim.SGD(model.parameters(), lr=0.1), epochs=2,
              val_loader=_toy(n=32), progress=False)
    training = [c for c in model.calls if c["grad"]]
    validating = [c for c in model.calls if not c["grad"]]
    assert len(training) == 2 * 4 and len(validating) == 2 * 2
    assert all(c["training"] for c in training)
    assert not any(c["training"] for c in validating)
    assert model.training  # back in train mode after each validation


def test_evaluate_and_predict_run_in_eval_mode_without_autograd():
    """Bug caught: evaluate or predict run without eval() or no_grad, or leaving the model's mode changed."""
    for run in (lambda m: train.evaluate(m, _toy(n=32)), lambda m: train.predict(m, _toy(n=32))):
        model = _Recorder()
        run(model)
        assert [(c["training"], c["grad"]) for c in model.calls] == [(False, False)] * 2
        assert model.training  # the mode it was in before
        model.eval()
        run(model)
        assert not model.training  # still the mode it was in before


def test_evaluate_leaves_a_frozen_part_in_eval_mode():
    """Bug caught: evaluate restoring the mode with model.train(), which unfreezes a backbone kept in eval
    mode."""
    # Transfer learning (lesson 07) keeps a frozen backbone in eval mode while the head trains:
    # evaluating must restore each module's own mode, not switch the whole model to train().
    model = nn.Sequential(nn.BatchNorm1d(5), nn.Linear(5, 3))
    model[0].eval()
    train.evaluate(model, _toy(n=32))
    assert [m.training for m in model] == [False, True] and model.training


def test_evaluate_matches_a_hand_computation():
    """Bug caught: evaluate's loss or accuracy not the plain mean over the samples."""
    loader = _toy(n=50)
    model = nn.Linear(5, 3)
    x, y = loader.images, loader.labels
    with torch.no_grad():
        out = model(x)
    result = train.evaluate(model, loader)
    assert result["loss"] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-5)
    assert result["acc"] == pytest.approx((out.argmax(1) == y).float().mean().item())


def test_evaluate_runs_in_eval_mode_and_restores_training_mode():
    """Bug caught: a regression reported with an accuracy, or scored with dropout on."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    x, y = torch.randn(64, 4), torch.randn(64, 4)
    loader = data.DeviceLoader(x, y, batch_size=16)
    result = train.evaluate(model, loader, loss_fn=F.mse_loss)
    assert set(result) == {"loss"}  # no accuracy for a regression
    assert model.training
    model.eval()
    with torch.no_grad():
        expected = F.mse_loss(model(x), y).item()  # dropout off
    assert result["loss"] == pytest.approx(expected, rel=1e-5)


def test_predict_returns_every_prediction_in_order(monkeypatch):
    """Bug caught: predict dropping, reordering or swapping predictions and targets, or copying to the host
    per batch."""
    model = nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.9))
    loader = _toy(n=50)
    loader.shuffle = False
    copies = []
    original_cpu = torch.Tensor.cpu

    def cpu(self, *args, **kwargs):
        copies.append(tuple(self.shape))
        return original_cpu(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "cpu", cpu)
    preds, targets = train.predict(model, loader)
    # The results come to the host in one copy each, at the end (not one per batch, not never).
    assert copies == [(50,), (50,)]
    monkeypatch.undo()
    model.eval()
    with torch.no_grad():
        expected = model[0](loader.images).argmax(1)
    assert torch.equal(preds, expected) and torch.equal(targets, loader.labels)
    model.train()
    train.predict(model, loader)
    assert model.training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_predict_brings_results_from_the_gpu_to_the_cpu():
    """Bug caught: predict returning CUDA tensors, which the plots and confusion_matrix cannot take."""
    x = torch.randn(40, 5)
    loader = data.DeviceLoader(x, x[:, :3].argmax(1), batch_size=16, device="cuda")
    model = nn.Linear(5, 3).cuda()
    preds, targets = train.predict(model, loader)
    assert preds.device.type == targets.device.type == "cpu"
    assert torch.equal(preds, model(x.cuda()).argmax(1).cpu()) and torch.equal(targets, x[:, :3].argmax(1))


def test_a_model_without_parameters_needs_a_device():
    """Bug caught: a model without parameters crashing with StopIteration instead of asking for device=."""
    flatten_only = nn.Flatten()
    loader = data.DeviceLoader(torch.randn(8, 3), torch.randint(0, 3, (8,)), batch_size=4)
    for run in (lambda **kw: train.evaluate(flatten_only, loader, **kw),
                lambda **kw: train.predict(flatten_only, loader, **kw),
                lambda **kw: train.fit(flatten_only, loader, torch.optim.SGD([torch.zeros(1)]),
                                       progress=False, **kw)):
        with pytest.raises(ValueError, match=r"\(Flatten\) has no parameters or buffers.*pass device="):
            run()
    assert set(train.evaluate(flatten_only, loader, device="cpu")) == {"loss", "acc"}
    assert train.predict(flatten_only, loader, device="cpu")[0].shape == (8,)


def test_fit_calls_callbacks_steps_the_scheduler_and_continues_history():
    """Bug caught: callbacks not called per epoch, the scheduler not stepped per epoch, lr not the epoch's
    start, or history not continued."""
    model = nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    calls = []
    history = train.fit(model, _toy(), optimizer, epochs=2, scheduler=scheduler, progress=False,
                        callbacks=[lambda epoch, metrics: calls.append((epoch, dict(metrics)))])
    assert [c[0] for c in calls] == [1, 2]
    assert history["lr"] == [0.5, 0.25] and optimizer.param_groups[0]["lr"] == 0.125
    assert calls[1][1]["train_loss"] == history["train_loss"][1]
    history = train.fit(model, _toy(), optimizer, epochs=1, history=history, progress=False)
    assert history["epoch"] == [1, 2, 3]


def test_fit_steps_a_per_batch_scheduler_after_every_optimiser_step():
    """Bug caught: scheduler_step='batch' stepping once per epoch, or before the optimiser's step."""
    model = nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    seen = []  # the lr each optimiser step really used
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"]))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    history = train.fit(model, _toy(), optimizer, epochs=2, scheduler=scheduler, scheduler_step="batch",
                        progress=False)
    assert len(_toy()) == 4
    assert seen == pytest.approx([1 / k for k in range(1, 9)])  # a new lr at every batch
    assert history["lr"] == pytest.approx([1.0, 1 / 5])       # the lr each epoch started with
    with pytest.raises(ValueError, match="scheduler_step must be 'epoch' or 'batch'"):
        train.fit(model, _toy(), optimizer, scheduler=scheduler, scheduler_step="step", progress=False)


def test_fit_steps_reduce_on_plateau_with_the_validation_loss(monkeypatch):
    """Bug caught: ReduceLROnPlateau stepped with the training loss when a validation loss exists, or
    stepped per batch."""
    model = nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    given = []
    monkeypatch.setattr(scheduler, "step", lambda metric: given.append(metric))
    history = train.fit(model, _toy(), optimizer, epochs=2, scheduler=scheduler, val_loader=_toy(seed=1),
                        progress=False)
    assert given == history["val_loss"]
    given.clear()
    history = train.fit(model, _toy(), optimizer, epochs=1, scheduler=scheduler, progress=False)
    assert given == history["train_loss"]
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        train.fit(model, _toy(), optimizer, scheduler=scheduler, scheduler_step="batch", progress=False)


class _Scripted(nn.Module):
    """A model whose validation loss follows a script: epoch k's weight is k (set by a callback)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    """Bug caught: EarlyStopping stopping one epoch early or late, or restoring the last weights instead of
    the best."""
    model = _Scripted()
    val_losses = [1.0, 0.5, 0.6, 0.4, 0.45, 0.41, 0.9, 0.2]  # best at epoch 4, then 3 epochs without
    stopper = train.EarlyStopping(model, monitor="val_loss", patience=3)
    for epoch, loss in enumerate(val_losses, start=1):
        with torch.no_grad():
            model.w.fill_(epoch)                       # the weights "of" this epoch
        stopper(epoch, {"val_loss": loss})
        if stopper.stop:
            break
    assert epoch == 7 and stopper.best_epoch == 4 and stopper.best == 0.4
    assert model.w.item() == 4.0                       # epoch 4's weights are back


@pytest.mark.parametrize("mode, scores, best_epoch", [
    ("max", [0.5, 0.7, 0.6, 0.65], 2),
    ("min", [0.5, 0.49, 0.48, 0.47], 1),  # min_delta 0.05: those small gains do not count
])
def test_early_stopping_understands_mode_and_min_delta(mode, scores, best_epoch):
    """Bug caught: mode='max' treated as min, or gains smaller than min_delta counted as improvements."""
    model = _Scripted()
    stopper = train.EarlyStopping(model, monitor="m", patience=2, mode=mode,
                                  min_delta=0.05 if mode == "min" else 0.0)
    for epoch, score in enumerate(scores, start=1):
        with torch.no_grad():
            model.w.fill_(epoch)
        stopper(epoch, {"m": score})
    assert stopper.stop and stopper.best_epoch == best_epoch and model.w.item() == best_epoch


def test_early_stopping_ends_fit_and_keeps_the_best_epoch():
    """Bug caught: fit ignoring a callback's stop flag, or the model not holding the best epoch's weights
    afterwards."""
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=5.0)  # too high: the loss will not keep falling
    stopper = train.EarlyStopping(model, monitor="val_loss", patience=2)
    history = train.fit(model, _toy(), optimizer, epochs=30, val_loader=_toy(seed=1), callbacks=[stopper],
                        progress=False)
    stopped = history.epochs
    assert stopped < 30 and stopped == stopper.best_epoch + 2
    assert min(history["val_loss"]) == stopper.best == history["val_loss"][stopper.best_epoch - 1]
    assert train.evaluate(model, _toy(seed=1))["loss"] == pytest.approx(stopper.best, rel=1e-5)


def test_early_stopping_says_what_is_wrong():
    """Bug caught: a missing metric, a bad mode or restore() before any score failing without a clear
    message."""
    model = _Scripted()
    with pytest.raises(KeyError, match="pass val_loader to fit"):
        train.EarlyStopping(model)(1, {"train_loss": 1.0})
    with pytest.raises(ValueError, match="mode must be"):
        train.EarlyStopping(model, mode="lowest")
    with pytest.raises(RuntimeError, match="nothing to restore"):
        train.EarlyStopping(model).restore()


def test_fit_takes_the_same_steps_as_a_hand_written_loop():
    """Bug caught: a missing zero_grad (gradients accumulate), a skipped batch, or a step per epoch.
    fit is lesson 03's loop: forward, loss, zero_grad, backward, step, batch after batch."""
    x = torch.randn(48, 5, generator=torch.Generator().manual_seed(1))
    y = x[:, :3].argmax(1)
    torch.manual_seed(0)
    model, by_hand = nn.Linear(5, 3), nn.Linear(5, 3)
    by_hand.load_state_dict(model.state_dict())
    train.fit(model, data.DeviceLoader(x, y, batch_size=16), torch.optim.SGD(model.parameters(), lr=0.1,
              momentum=0.9), epochs=2, progress=False)
    optimizer = torch.optim.SGD(by_hand.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        for start in range(0, 48, 16):
            loss = F.cross_entropy(by_hand(x[start:start + 16]), y[start:start + 16])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert torch.allclose(model.weight, by_hand.weight, atol=1e-6)
    assert torch.allclose(model.bias, by_hand.bias, atol=1e-6)


def test_fit_really_updates_the_parameters():
    """Bug caught: fit never calling optimizer.step()."""
    model = nn.Linear(5, 3)
    before = model.weight.detach().clone()
    train.fit(model, _toy(), torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
    assert not torch.equal(before, model.weight)


def test_fit_does_not_sync_with_the_host_per_batch(monkeypatch):
    """Bug caught: a per-batch .item() in fit, which stalls a GPU at every batch.
    Per-batch .item()/.tolist()/.cpu() calls would stall a GPU; fit may sync once per epoch."""
    calls = {"item": 0, "tolist": 0, "cpu": 0}
    for name in calls:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    loader = data.DeviceLoader(torch.randn(256, 5), torch.randint(0, 3, (256,)), batch_size=8)
    model = nn.Linear(5, 3)
    train.fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, val_loader=loader,
              progress=False)
    assert len(loader) == 32
    assert calls["item"] == 0 and calls["cpu"] == 0
    assert calls["tolist"] <= 4  # train + validation totals, once per epoch each


def test_fit_rejects_outputs_that_do_not_match_the_targets():
    """Bug caught: outputs flattened across the batch broadcast into a wrong loss instead of a clear error."""
    loader = data.DeviceLoader(torch.randn(8, 6), torch.zeros(8, dtype=torch.long), batch_size=4)
    flattened = nn.Sequential(nn.Linear(6, 3), nn.Flatten(0))  # [4, 6] => [4, 3] => [12]: not one row per target
    with pytest.raises(ValueError, match="12 outputs for a batch of 4"):
        train.fit(flattened, loader, torch.optim.SGD(flattened.parameters(), lr=0.1), progress=False)
    with pytest.raises(ValueError, match="12 outputs for a batch of 4"):
        train.evaluate(flattened, loader)
    with pytest.raises(RuntimeError):  # a wrong input width is PyTorch's own shape error
        train.evaluate(nn.Linear(5, 3), loader)


def test_fit_warns_when_training_diverges_and_stops_once_the_weights_are_lost():
    """Bug caught: a diverged run training on silently, or NaN weights' 'scores' reported as validation
    metrics."""
    torch.manual_seed(0)
    model = nn.Linear(5, 1)
    loader = data.DeviceLoader(torch.randn(64, 5) * 100, torch.randn(64, 1) * 100, batch_size=16)
    with pytest.warns(RuntimeWarning) as caught:
        history = train.fit(model, loader, torch.optim.SGD(model.parameters(), lr=10.0), loss_fn=F.mse_loss,
                            epochs=6, val_loader=loader, progress=False)
    assert "train_acc" not in history
    message = str(caught[-1].message)
    assert "diverged; lower the learning rate" in message and "inputs" not in message
    assert "weights are no longer finite" in message and "fit stops" in message
    assert history.epochs < 6  # stopped after the epoch that lost the weights
    assert not torch.isfinite(model.weight).all()
    assert math.isnan(history["val_loss"][-1])  # not a score of NaN weights


def test_fit_blames_the_data_when_the_inputs_hold_nan():
    """Bug caught: NaN inputs blamed on the learning rate, or counted in the wrong batches."""
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = x[:, :3].argmax(1)
    broken = x.clone()
    broken[20, 1] = float("nan")  # one bad pixel, in the second of four batches
    model = nn.Linear(5, 3)
    with pytest.warns(RuntimeWarning) as caught:
        history = train.fit(model, data.DeviceLoader(broken, y, batch_size=16), torch.optim.SGD(
            model.parameters(), lr=0.01), epochs=3, val_loader=data.DeviceLoader(x, y, batch_size=16),
            progress=False)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "1 of the 4 batches have NaN or inf in their inputs" in message
    assert "a lower learning rate will not help" in message and "lower the learning rate;" not in message
    # All-NaN weights "predict" class 0 for every image: that accuracy is not reported as a score.
    assert history["epoch"] == [1] and math.isnan(history["val_acc"][0]) and math.isnan(history["val_loss"][0])
    with pytest.warns(RuntimeWarning, match="evaluate: 1 of the 4 batches have NaN"):
        train.evaluate(nn.Linear(5, 3), data.DeviceLoader(broken, y, batch_size=16))


def test_fit_stays_quiet_when_all_is_finite(recwarn):
    """Bug caught: a healthy run warning about divergence or bad inputs."""
    model = nn.Linear(5, 3)
    history = train.fit(model, _toy(), torch.optim.SGD(model.parameters(), lr=0.1), epochs=2,
                        val_loader=_toy(), progress=False)
    assert history.epochs == 2 and all(math.isfinite(v) for v in history["val_acc"])
    assert [str(w.message) for w in recwarn] == []


def test_empty_loader_is_an_error():
    """Bug caught: a loader without batches giving a loss of nan (0/0) instead of an error."""
    model = nn.Linear(5, 3)
    empty = data.DeviceLoader(torch.randn(3, 5), torch.zeros(3, dtype=torch.long), batch_size=4, drop_last=True)
    with pytest.raises(ValueError, match="no batches"):
        train.fit(model, empty, torch.optim.SGD(model.parameters(), lr=0.1), progress=False)


@pytest.mark.parametrize("amp, channels_last", [(False, False), (True, True)])
def test_mixed_precision_and_channels_last_run_on_the_cpu(amp, channels_last):
    """Bug caught: amp not reaching the forward pass, channels_last not reaching the batches or weights, or
    autocast changing the weights' dtype."""
    torch.manual_seed(0)
    model = models.LeNet5(in_channels=3, image_size=32)
    seen = []  # what the first convolution receives and computes in, per batch
    model.features[0].register_forward_hook(lambda module, inputs, out: seen.append(
        (inputs[0].is_contiguous(memory_format=torch.channels_last) and not inputs[0].is_contiguous(),
         out.dtype)))
    loader = data.DeviceLoader(torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,)), batch_size=16)
    channels_last = channels_last and channels_last_is_safe("cpu")  # fit ignores it where unsafe
    history = train.fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.01), amp=amp,
                        channels_last=channels_last, val_loader=loader, progress=False)
    assert seen == [(channels_last, torch.bfloat16 if amp else torch.float32)] * 4  # 2 train + 2 val
    assert model.features[0].weight.is_contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    assert model.features[0].weight.dtype == torch.float32  # autocast keeps float32 weights
    assert torch.isfinite(torch.tensor(history["train_loss"])).all()
    assert 0 <= history["val_acc"][0] <= 1


# ---------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path):
    """Bug caught: a checkpoint that loses the optimiser state or the extras, or leaves its temporary file
    behind."""
    model = models.MLP(4, [8], 2)
    optimizer = torch.optim.Adam(model.parameters())
    train.fit(model, data.DeviceLoader(torch.randn(16, 4), torch.randint(0, 2, (16,)), batch_size=8),
              optimizer, progress=False)
    path = train.save_checkpoint(tmp_path / "ckpt" / "mlp.pt", model, optimizer, epoch=3, note="hi")
    assert [p.name for p in path.parent.iterdir()] == ["mlp.pt"]  # no temporary file left behind
    fresh, fresh_opt = models.MLP(4, [8], 2), torch.optim.Adam(models.MLP(4, [8], 2).parameters())
    extra = train.load_checkpoint(path, fresh, fresh_opt)
    assert extra == {"epoch": 3, "note": "hi"}
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    assert fresh_opt.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]


def test_a_failed_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    """Bug caught: a failed save overwriting the last good checkpoint (a non-atomic write)."""
    model = nn.Linear(2, 2)
    path = train.save_checkpoint(tmp_path / "m.pt", model, epoch=1)
    original_save = torch.save

    def crash(obj, f, *args, **kwargs):
        original_save(obj, f, *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(train.CheckpointError, match=r"could not write .*m\.pt \(OSError: disk full\)"):
        train.save_checkpoint(path, model, epoch=2)
    monkeypatch.undo()
    assert train.load_checkpoint(path, nn.Linear(2, 2)) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_corrupt_missing_and_mismatched_checkpoints_are_clear_errors(tmp_path):
    """Bug caught: a missing, corrupt, truncated, mismatched or plain state_dict file raising torch's raw
    errors."""
    model = nn.Linear(2, 2)
    with pytest.raises(train.CheckpointError, match="no checkpoint"):
        train.load_checkpoint(tmp_path / "nope.pt", model)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(train.CheckpointError, match="not a readable checkpoint"):
        train.load_checkpoint(corrupt, model)
    truncated = tmp_path / "truncated.pt"
    train.save_checkpoint(truncated, model)
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(train.CheckpointError, match="not a readable checkpoint"):
        train.load_checkpoint(truncated, model)
    other = train.save_checkpoint(tmp_path / "other.pt", nn.Linear(3, 2))
    with pytest.raises(train.CheckpointError, match="does not fit this model"):
        train.load_checkpoint(other, model)
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(train.CheckpointError, match="no 'model'"):
        train.load_checkpoint(tmp_path / "plain.pt", model)


def test_a_checkpoint_that_does_not_fit_says_why_in_full(tmp_path):
    """Bug caught: a mismatch message cut to its first line, hiding the missing and unexpected keys."""
    path = train.save_checkpoint(tmp_path / "linear.pt", nn.Linear(3, 2))
    with pytest.raises(train.CheckpointError) as error:
        train.load_checkpoint(path, nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 4)))
    message = str(error.value)
    assert 'Missing key(s) in state_dict: "0.weight", "0.bias", "2.weight", "2.bias"' in message
    assert 'Unexpected key(s) in state_dict: "weight", "bias"' in message
    with pytest.raises(train.CheckpointError) as error:
        train.load_checkpoint(path, nn.Linear(4, 2))
    assert "size mismatch for weight" in str(error.value) and "torch.Size([2, 3])" in str(error.value)
    assert "\x1b" not in str(error.value)


def test_loading_is_all_or_nothing(tmp_path):
    """Bug caught: a model loaded although its optimiser does not fit (another class, other groups), or
    half-loaded weights kept."""
    source = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    optimizer = torch.optim.Adam(source.parameters())
    source(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    path = train.save_checkpoint(tmp_path / "both.pt", source, optimizer)

    def unchanged(model, run):
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(train.CheckpointError) as error:
            run()
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        return str(error.value)

    # The model fits, the optimizer (over one layer only) does not: neither is loaded.
    target = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    one_layer = torch.optim.Adam(target[0].parameters())
    message = unchanged(target, lambda: train.load_checkpoint(path, target, one_layer))
    assert "does not fit this optimizer" in message and "holds 4 parameters" in message
    assert one_layer.state_dict()["state"] == {}
    # Another kind of optimizer, or a file saved without one: refused before anything loads.
    message = unchanged(target, lambda: train.load_checkpoint(path, target, torch.optim.SGD(target.parameters())))
    assert "optimizer Adam, this one is SGD" in message
    weights_only = train.save_checkpoint(tmp_path / "weights.pt", source)
    message = unchanged(target, lambda: train.load_checkpoint(weights_only, target, one_layer))
    assert "no optimizer state" in message
    # A model with one key too many: torch copies what fits before complaining; it is undone.
    bigger = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2), nn.Linear(2, 1))
    message = unchanged(bigger, lambda: train.load_checkpoint(path, bigger))
    assert 'Missing key(s) in state_dict: "2.weight", "2.bias"' in message
    # And when everything fits, everything loads.
    adam = torch.optim.Adam(target.parameters())
    train.load_checkpoint(path, target, adam)
    assert torch.equal(target[1].weight, source[1].weight)
    assert torch.equal(adam.state_dict()["state"][3]["exp_avg"], optimizer.state_dict()["state"][3]["exp_avg"])


class _Colour(enum.IntEnum):
    RED = 1


def test_save_checkpoint_turns_history_and_numpy_into_plain_values(tmp_path):
    """Bug caught: a History or NumPy scalar saved as is, which weights_only=True cannot load back."""
    history = train.History()
    history.append({"epoch": 1, "val_acc": np.float32(0.5)})
    history.append({"epoch": 2, "val_acc": 0.75})
    path = train.save_checkpoint(tmp_path / "m.pt", nn.Linear(2, 2), history=history, best=np.float64(0.75),
                                 step=np.int64(7), nested={"scores": [np.float32(1.5)], "ok": np.bool_(True)})
    extra = train.load_checkpoint(path, nn.Linear(2, 2))
    assert extra == {"history": {"epoch": [1, 2], "val_acc": [0.5, 0.75]}, "best": 0.75, "step": 7,
                     "nested": {"scores": [1.5], "ok": True}}
    assert type(extra["history"]) is dict and type(extra["best"]) is float and type(extra["step"]) is int
    assert train.History(extra["history"]).epochs == 2


@pytest.mark.parametrize("value, culprit", [
    (Path("runs"), "the extra 'bad' is of type PosixPath|WindowsPath"),
    (np.zeros(3), "the extra 'bad' is of type ndarray"),
    ({"inner": [1, object()]}, r"the extra 'bad'\['inner'\]\[1\] is of type object"),
    ({1, 2}, "the extra 'bad' is of type set"),
    (_Colour.RED, "could not read it back.*Unsupported global.*_Colour"),  # an int, but not for torch.load
])
def test_save_checkpoint_refuses_what_cannot_be_loaded(tmp_path, value, culprit):
    """Bug caught: an extra weights_only=True cannot read (a Path, an array, an enum) saved, or a reserved
    name accepted."""
    model = nn.Linear(2, 2)
    path = train.save_checkpoint(tmp_path / "m.pt", model, epoch=1)
    with pytest.raises(train.CheckpointError, match=culprit):
        train.save_checkpoint(path, model, epoch=2, bad=value)
    assert train.load_checkpoint(path, model) == {"epoch": 1}  # the old checkpoint is kept
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    with pytest.raises(train.CheckpointError, match="names model, optimizer, optimizer_class are taken"):
        train.save_checkpoint(path, model, optimizer_class="SGD")


class _Payload:
    """An object whose unpickling would run code: what a malicious checkpoint holds."""

    ran = False

    def __reduce__(self):
        return (_Payload._run, ())

    @staticmethod
    def _run():
        _Payload.ran = True
        return {}


def test_loading_never_runs_code_from_the_file(tmp_path):
    """Bug caught: load_checkpoint without weights_only=True, so a checkpoint's pickle runs code.
    weights_only=True: a pickled whole model, or a payload, is refused, not executed."""
    torch.save(models.MLP(4, [8], 2), tmp_path / "whole.pt")
    with pytest.raises(train.CheckpointError, match=r"not a readable checkpoint \(UnpicklingError: "
                                                    r"Unsupported global: GLOBAL helpers.models.MLP") as error:
        train.load_checkpoint(tmp_path / "whole.pt", models.MLP(4, [8], 2))
    assert "\x1b" not in str(error.value) and "\n" not in str(error.value)
    torch.save({"model": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(train.CheckpointError, match="not a readable checkpoint"):
        train.load_checkpoint(tmp_path / "evil.pt", models.MLP(4, [8], 2))
    assert not _Payload.ran


# ------------------------------------------------------------------ lesson 07: tta, compile, timing
class _Columns(nn.Module):
    """Logits that are a fixed linear map of a [N,1,2,3] image's pixels: a mirror image
    (flip of dim 3, the width) gives other logits, a flip of the height others again."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.arange(18.0).view(3, 6).sin() * 3)

    def forward(self, x):
        return x.flatten(1) @ self.weight.T


def _images(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 2, 3, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_tta_scores_the_mean_logits_of_each_image_and_its_mirror():
    """Bug caught: TTA flipping the height, summing logits, or averaging probabilities instead of logits."""
    model, (x, y) = _Columns(), _images()
    loader = data.DeviceLoader(x, y, batch_size=5)
    with torch.no_grad():
        logits = (model(x) + model(x.flip(3))) / 2  # logits averaged, not probabilities
    result = train.evaluate(model, loader, tta=True)
    assert result["loss"] == pytest.approx(F.cross_entropy(logits, y).item())
    assert result["acc"] == pytest.approx((logits.argmax(1) == y).double().mean().item())
    preds, _ = train.predict(model, loader, tta=True)
    assert torch.equal(preds, logits.argmax(1))
    # and the mean really differs from the plain model, the height flip, and averaged probabilities
    with torch.no_grad():
        plain = model(x)
        flipped_height = (model(x) + model(x.flip(2))) / 2
        probabilities = ((plain.softmax(1) + model(x.flip(3)).softmax(1)) / 2).log()
    for other in (plain, flipped_height, probabilities):
        assert F.cross_entropy(other, y).item() != pytest.approx(result["loss"], abs=1e-4)
    assert train.evaluate(model, loader)["loss"] == pytest.approx(F.cross_entropy(plain, y).item())


def test_tta_needs_image_batches():
    """Bug caught: tta=True on flat batches flipping the wrong axis instead of failing clearly."""
    with pytest.raises(ValueError, match=r"tta=True flips images horizontally: it needs \[N,C,H,W\] batches"):
        train.evaluate(nn.Linear(5, 3), _toy(n=16), tta=True)


def test_fit_records_the_training_time_of_each_epoch(monkeypatch):
    """Bug caught: train_time taken without waiting for the device, or a synchronize per batch."""
    waits = []
    monkeypatch.setattr(train, "synchronize", lambda device: waits.append(device))
    model = nn.Linear(5, 3)
    history = train.fit(model, _toy(), torch.optim.SGD(model.parameters(), lr=0.1), epochs=3,
                        val_loader=_toy(n=32), progress=False)
    assert len(history["train_time"]) == 3
    assert all(isinstance(t, float) and t > 0 for t in history["train_time"])
    assert len(waits) == 3  # one wait for the device per epoch, none per batch


class _FakeCompiled:
    """What a monkeypatched torch.compile returns: the model, counting its calls; with
    ``fail``, a compiler that breaks at its first call, as inductor does without a C++ compiler."""

    def __init__(self, model, mode=None, fail=False):
        self.model, self.mode, self.fail, self.calls = model, mode, fail, 0

    def __call__(self, x):
        self.calls += 1
        if self.fail:
            raise RuntimeError("InductorError: CppCompileError: C++ compile error\nmore lines")
        return self.model(x)


def test_fit_trains_and_validates_through_torch_compile(monkeypatch):
    """Bug caught: compile= not used for validation, its mode not passed, or the state_dict keys renamed."""
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: compiled.append(_FakeCompiled(model, mode))
                        or compiled[-1])
    model = nn.Linear(5, 3)
    keys = list(model.state_dict())
    train.fit(model, _toy(n=64), torch.optim.SGD(model.parameters(), lr=0.1), epochs=2,
              val_loader=_toy(n=32), progress=False, compile="reduce-overhead")
    assert len(compiled) == 1 and compiled[0].mode == "reduce-overhead"
    assert compiled[0].calls == 2 * 4 + 2 * 2  # every training and validation batch
    assert list(model.state_dict()) == keys  # the module keeps its weights under its own names
    with pytest.raises(ValueError, match="compile must be True, False or a torch.compile mode"):
        train.fit(model, _toy(), torch.optim.SGD(model.parameters(), lr=0.1), progress=False, compile="fast")


@pytest.mark.parametrize("when", ["at compile", "at the first call"])
def test_fit_falls_back_to_eager_when_compile_fails(monkeypatch, when):
    """Bug caught: a failed torch.compile crashing the run, warning more than once, or changing the
    results."""
    def broken_compile(model, mode=None):
        if when == "at compile":
            raise RuntimeError("Windows not yet supported for torch.compile")
        return _FakeCompiled(model, mode, fail=True)

    def run(compile):
        torch.manual_seed(0)
        model = nn.Linear(5, 3)
        history = train.fit(model, _toy(n=64), torch.optim.SGD(model.parameters(), lr=0.1), epochs=2,
                            val_loader=_toy(n=32), progress=False, compile=compile)
        return model, history

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning) as caught:
        model, history = run(True)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert messages[0].startswith("fit: torch.compile failed (RuntimeError: ")
    assert messages[0].endswith("training without it (eager mode), which gives the same results, only slower")
    eager, eager_history = run(False)  # the same steps as without compile
    assert torch.equal(model.weight, eager.weight)
    assert history["val_loss"] == eager_history["val_loss"]


def test_a_model_error_under_compile_is_the_models_error(monkeypatch):
    """Bug caught: a bug in the model hidden behind compile's fallback to eager."""
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: _FakeCompiled(model, mode, fail=True))
    model = nn.Linear(4, 3)  # the toy inputs have 5 features
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied"):
        train.fit(model, _toy(), torch.optim.SGD(model.parameters(), lr=0.1), progress=False, compile=True)


def test_fit_with_the_real_torch_compile_keeps_clean_state_dict_keys(monkeypatch):
    """Bug caught: compiled training falling back to eager, or the keys gaining compile's _orig_mod.
    prefix.
    The real torch.compile (dynamo's graph capture, with train/eval switches, and autograd's
    ahead-of-time backward) with its "aot_eager" backend: inductor's C++ code generation would
    take a minute on two cores."""
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: real_compile(model, backend="aot_eager"))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    keys = list(model.state_dict())
    x, y = _images(n=64)
    loader = data.DeviceLoader(x, y, batch_size=16, shuffle=True, drop_last=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # compiled: no fallback to eager
        history = train.fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), epochs=3,
                            val_loader=loader, progress=False, compile=True)
    assert list(model.state_dict()) == keys and not any("_orig_mod" in k for k in keys)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_loss"][-1] == pytest.approx(train.evaluate(model, loader)["loss"], rel=1e-4)


def test_record_result_appends_one_json_line_per_run(tmp_path, monkeypatch):
    """Bug caught: record_result overwriting the file, not making its folder, mislabelling the mode, or
    half-writing a bad record."""
    monkeypatch.delenv("COURSE_RESULTS", raising=False)
    assert train.record_result("07", "nothing to record into", acc=0.5) is None
    path = tmp_path / "out" / "results.jsonl"
    monkeypatch.setenv("COURSE_RESULTS", str(path))
    monkeypatch.setenv("COURSE_QUICK", "0")
    train.record_result("07", "LeNet-5 on MNIST", device="cpu", test_acc=torch.tensor(0.9931), train_s=2.5)
    monkeypatch.setenv("COURSE_QUICK", "1")
    train.record_result("05", "CNN", device=torch.device("cpu"), test_acc=np.float32(0.5), epochs=5)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"lesson": "07", "run": "LeNet-5 on MNIST", "device": f"cpu ({os.cpu_count()} cores)",
                        "mode": "full", "test_acc": pytest.approx(0.9931), "train_s": 2.5}
    assert lines[1]["mode"] == "quick" and lines[1]["epochs"] == 5 and lines[1]["test_acc"] == 0.5
    with pytest.raises(TypeError, match=r"record_result: history=\[1, 2\] is a list; pass numbers or strings"):
        train.record_result("07", "bad", history=[1, 2])
    assert len(path.read_text().splitlines()) == 2  # nothing half-written


# ------------------------------------------------------------- fit under faults (round two)
def test_fit_checks_no_inputs_per_batch_only_the_weights_once_per_epoch(monkeypatch):
    """Bug caught: a per-batch torch.isfinite(x) (or any other per-batch check) in the loop, which
    cost about 9 % of an MLP epoch. Healthy inputs are looked at only when a loss is not finite."""
    calls = []
    original = torch.isfinite
    monkeypatch.setattr(torch, "isfinite", lambda t: calls.append(t.shape) or original(t))
    model = nn.Linear(5, 3)  # two parameters
    loader = data.DeviceLoader(torch.randn(64, 5), torch.randint(0, 3, (64,)), batch_size=8)
    train.fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, progress=False)
    assert len(loader) == 8 and calls == [(3, 5), (3,)] * 2  # the weight and the bias, once per epoch


def test_targets_of_minus_100_count_in_neither_loss_nor_accuracy():
    """Bug caught: ignored targets (cross_entropy's ignore_index) counted as wrong answers, or
    batches weighted by their size instead of by their labelled targets."""
    torch.manual_seed(0)
    x, y = torch.randn(12, 5), torch.randint(0, 3, (12,))
    y[[1, 2, 3, 5]] = -100  # the first batch of four has one labelled target, the second three
    model = nn.Linear(5, 3)
    result = train.evaluate(model, data.DeviceLoader(x, y, batch_size=4))
    with torch.no_grad():
        out = model(x)
    labelled = y != -100
    assert result["loss"] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-5)  # the mean over 8 targets
    assert result["acc"] == pytest.approx((out.argmax(1) == y)[labelled].float().mean().item())
    y[:] = -100  # nothing labelled at all: no score, not a crash or a 0 %
    assert all(math.isnan(v) for v in train.evaluate(model, data.DeviceLoader(x, y, batch_size=4)).values())


def test_a_reused_early_stopping_starts_again_in_a_new_run():
    """Bug caught: the `stop` flag (and the best weights) of the first run kept, so the second run
    stopped after one epoch and put the first run's weights back."""
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    stopper = train.EarlyStopping(model, patience=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=5.0)  # too high: it stops early
    first = train.fit(model, _toy(), optimizer, epochs=30, val_loader=_toy(seed=1), callbacks=[stopper],
                      progress=False)
    assert stopper.stop and first.epochs < 30
    fresh = nn.Linear(5, 3)
    model.load_state_dict(fresh.state_dict())  # a new run from new weights, with a new history
    for group in optimizer.param_groups:
        group["lr"] = 0.05
    second = train.fit(model, _toy(), optimizer, epochs=4, val_loader=_toy(seed=1), callbacks=[stopper],
                       progress=False)
    assert second.epochs == 4 and not stopper.stop  # improving all along: not stopped at once
    assert stopper.best_epoch is not None and stopper.best == min(second["val_loss"])


def test_a_reused_early_stopping_continues_the_history_it_watched():
    """Bug caught: continuing the same history forgets the best score, so a worse epoch is restored.
    Continuing training (same history) keeps the best score so far: patience starts again,
    and the continued run stops unless it beats that score, then restores the best overall."""
    model = _Scripted()
    stopper = train.EarlyStopping(model, patience=2)
    history = train.History()
    losses = iter([0.5, 0.3, 0.4, 0.45, 0.6, 0.7, 0.8, 0.9])

    def fake_fit(epochs):
        stopper.on_fit_start(history)
        for _ in range(epochs):
            epoch = history.epochs + 1
            with torch.no_grad():
                model.w.fill_(epoch)
            metrics = {"epoch": epoch, "val_loss": next(losses)}
            history.append(metrics)
            stopper(epoch, metrics)
            if stopper.stop:
                return

    fake_fit(4)  # best at epoch 2, stopped after epoch 4
    assert stopper.stop and stopper.best_epoch == 2 and model.w.item() == 2
    fake_fit(4)  # continues: epochs 5 and 6 do not beat 0.3
    assert history.epochs == 6 and stopper.best_epoch == 2 and model.w.item() == 2


def test_fit_resets_a_reused_early_stopping_itself():
    """Bug caught: fit not calling on_fit_start, so an old stop flag ends the new run after one epoch.
    The same, through fit: a second fit over the same history calls on_fit_start."""
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    stopper = train.EarlyStopping(model, patience=1)
    stopper.stop = True  # left over from an earlier run
    history = train.fit(model, _toy(), torch.optim.SGD(model.parameters(), lr=0.05), epochs=3,
                        val_loader=_toy(seed=1), callbacks=[stopper], progress=False)
    assert history.epochs == 3


@pytest.mark.parametrize("monitor, mode", [("val_acc", "max"), ("train_acc", "max"), ("val_loss", "min")])
def test_early_stopping_takes_its_mode_from_the_metric(monitor, mode):
    """Bug caught: monitor="val_acc" with a default mode="min", which keeps the worst epoch."""
    assert train.EarlyStopping(_Scripted(), monitor=monitor).mode == mode


def test_early_stopping_warns_about_a_mode_that_keeps_the_worst_epoch():
    """Bug caught: an accuracy watched with mode='min' without a warning, or a metric name that says
    nothing accepted without a mode."""
    with pytest.warns(UserWarning, match=r"keeps the epoch with the lowest val_acc.*Pass mode='max'"):
        train.EarlyStopping(_Scripted(), monitor="val_acc", mode="min")
    with pytest.raises(ValueError, match="pass mode='min' or mode='max'"):
        train.EarlyStopping(_Scripted(), monitor="f1")


def test_early_stopping_without_a_validation_set_fails_before_training():
    """Bug caught: the KeyError only after a whole first epoch had been trained."""
    model = _Recorder()
    with pytest.raises(ValueError, match="watches 'val_loss', which only a validation set gives"):
        train.fit(model, _toy(), torch.optim.SGD(model.parameters(), lr=0.1),
                  callbacks=[train.EarlyStopping(model)], progress=False)
    assert model.calls == []  # not one batch


@pytest.mark.parametrize("make", [
    lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=40),
    lambda opt: torch.optim.lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=20),
], ids=["OneCycleLR", "CyclicLR"])
def test_a_per_batch_scheduler_stepped_per_epoch_is_warned_about(make):
    """Bug caught: OneCycleLR/CyclicLR stepped once per epoch (the default) never anneal."""
    model = nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.warns(RuntimeWarning, match="built to be stepped after every batch.*scheduler_step='batch'"):
        train.fit(model, _toy(), optimizer, epochs=2, scheduler=make(optimizer), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        train.fit(model, _toy(), optimizer, epochs=2, scheduler=make(optimizer), scheduler_step="batch",
                  progress=False)
        per_epoch = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=2)
        train.fit(model, _toy(), optimizer, epochs=2, scheduler=per_epoch, progress=False)  # sized in epochs


def test_a_loader_without_batches_says_which_and_why():
    """Bug caught: 'no batches' without saying which loader or why (drop_last larger than the data, an
    empty set)."""
    model = nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    tiny = data.DeviceLoader(torch.randn(3, 5), torch.zeros(3, dtype=torch.long), batch_size=4, drop_last=True)
    with pytest.raises(ValueError, match=r"train_loader yielded no batches: drop_last=True drops the only batch: "
                                         r"its 3 samples are fewer than batch_size=4"):
        train.fit(model, tiny, optimizer, progress=False)
    with pytest.raises(ValueError, match="val_loader yielded no batches: it holds 0 samples"):
        train.fit(model, _toy(), optimizer, val_loader=torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.randn(0, 5), torch.zeros(0, dtype=torch.long))), progress=False)


def test_a_generator_as_loader_is_refused_before_it_runs_dry():
    """Bug caught: a generator used up by epoch 1, then "no batches" after a whole epoch."""
    model = nn.Linear(5, 3)
    batches = ((x, y) for x, y in _toy())
    with pytest.raises(TypeError, match=r"train_loader is an iterator \(a generator\?\).* 3 times"):
        train.fit(model, batches, torch.optim.SGD(model.parameters(), lr=0.1), epochs=3, progress=False)
    history = train.fit(model, batches, torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, progress=False)
    assert history.epochs == 1  # one pass over a generator is fine


@pytest.mark.parametrize("batch, described", [
    ({"image": torch.zeros(2, 5), "label": torch.zeros(2)}, "a dict with the keys ['image', 'label']"),
    ((torch.zeros(2, 5), torch.zeros(2), torch.zeros(2)), "a tuple of 3 items"),
    (torch.zeros(2, 5), "a single tensor of shape (2, 5)"),
    ((torch.zeros(2, 5), [0, 1]), "a tuple of 2 items"),
])
def test_batches_that_are_not_pairs_of_tensors_are_one_clear_error(batch, described):
    """Bug caught: a dict, a triple, a bare tensor or a list target unpacked into nonsense instead of a
    clear error."""
    model = nn.Linear(5, 3)
    with pytest.raises(TypeError, match=re.escape(f"train_loader must yield (inputs, targets) pairs of tensors, "
                                                  f"as a DataLoader over a torchvision dataset or a TensorDataset "
                                                  f"does; it yielded {described}")):
        train.fit(model, [batch], torch.optim.SGD(model.parameters(), lr=0.1), progress=False)


def test_a_model_that_returns_a_tuple_is_one_clear_error():
    """Bug caught: a model's tuple of outputs reaching the loss, which fails far from the cause.
    GoogLeNet's namedtuple (torchvision, training mode) instead of a tensor of logits."""
    import collections

    Outputs = collections.namedtuple("GoogLeNetOutputs", "logits aux_logits2 aux_logits1")

    class WithAux(nn.Linear):
        def forward(self, x):
            out = super().forward(x)
            return Outputs(out, out, out)

    model = WithAux(5, 3)
    with pytest.raises(TypeError, match=r"returned a GoogLeNetOutputs, not a tensor.*aux_logits=False"):
        train.fit(model, _toy(), torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
    with pytest.raises(TypeError, match="returned a GoogLeNetOutputs, not a tensor"):
        train.predict(model, _toy())


def test_an_explicit_device_the_machine_lacks_gets_the_course_message(monkeypatch):
    """Bug caught: device='cuda' without CUDA raising torch's error instead of the course's device message."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model = nn.Linear(5, 3)
    for run in (lambda: train.fit(model, _toy(), torch.optim.SGD(model.parameters(), lr=0.1), device="cuda"),
                lambda: train.evaluate(model, _toy(), device="cuda")):
        with pytest.raises(ValueError, match=r"get_device\('cuda'\) asks for a device this machine does not have"):
            run()


def test_channels_last_is_ignored_with_a_warning_where_it_is_unsafe(monkeypatch):
    """Bug caught: fit taking oneDNN's channels_last path on a CPU without AVX-512, where it hangs."""
    monkeypatch.setattr("helpers.device.cpu_has_avx512", lambda: False)
    model = models.LeNet5(in_channels=3, image_size=32)
    layouts = []
    model.features[0].register_forward_pre_hook(lambda m, inputs: layouts.append(
        inputs[0].is_contiguous(memory_format=torch.channels_last) and not inputs[0].is_contiguous()))
    loader = data.DeviceLoader(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)), batch_size=4)
    with pytest.warns(RuntimeWarning, match="channels_last=True is ignored on this CPU"):
        train.fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.01), channels_last=True, progress=False)
    assert layouts == [False, False] and model.features[0].weight.is_contiguous()


def test_a_penalty_trains_but_stays_out_of_the_metrics():
    """Bug caught: the validation loss including the training penalty (lesson 06's L1 run)."""
    torch.manual_seed(0)
    model, plain = nn.Linear(5, 3), nn.Linear(5, 3)
    plain.load_state_dict(model.state_dict())

    def l1(m):
        return 0.05 * m.weight.abs().sum()

    history = train.fit(model, _toy(), torch.optim.SGD(model.parameters(), lr=0.1), epochs=3,
                        val_loader=_toy(seed=1), penalty=l1, progress=False)
    train.fit(plain, _toy(), torch.optim.SGD(plain.parameters(), lr=0.1), epochs=3, progress=False)
    assert model.weight.abs().sum() < plain.weight.abs().sum()  # the penalty was minimised too
    assert history["val_loss"][-1] == pytest.approx(train.evaluate(model, _toy(seed=1))["loss"], rel=1e-5)
    assert history["train_loss"][-1] == pytest.approx(train.evaluate(model, _toy())["loss"], rel=0.2)


def test_a_loss_of_more_than_one_number_is_one_clear_error():
    """Bug caught: reduction='none' losses failing inside backward() with a message about grad outputs."""
    model = nn.Linear(5, 3)
    with pytest.raises(ValueError, match=r"loss_fn must return one number.*\(16,\) \(reduction='none'\?\)"):
        train.fit(model, _toy(), torch.optim.SGD(model.parameters(), lr=0.1), progress=False,
                  loss_fn=lambda out, y: F.cross_entropy(out, y, reduction="none"))


def test_an_interrupted_epoch_leaves_its_bar_where_it_stopped(monkeypatch):
    """Bug caught: after a KeyboardInterrupt the saved notebook showed the epoch's bar frozen at 0."""
    finished = []
    monkeypatch.setattr(train.Progress, "finish", lambda self, summary: finished.append(summary))
    model = nn.Linear(5, 3)

    def interrupting(x):
        if len(finished) == 0 and model.calls == 2:
            raise KeyboardInterrupt
        model.calls += 1
        return nn.Linear.forward(model, x)

    model.calls = 0
    model.forward = interrupting
    with pytest.raises(KeyboardInterrupt):
        train.fit(model, _toy(), torch.optim.SGD(model.parameters(), lr=0.1), progress=True)
    assert finished == ["interrupted"]


# --------------------------------------------------------------- results and checkpoints
def test_record_result_writes_nan_as_null(tmp_path, monkeypatch):
    """Bug caught: a diverged run's nan written as NaN, which is not JSON."""
    path = tmp_path / "results.jsonl"
    monkeypatch.setenv("COURSE_RESULTS", str(path))
    train.record_result("06", "diverged", device="cpu", val_acc=float("nan"), val_loss=torch.tensor(float("inf")))
    record = json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert record["val_acc"] is None and record["val_loss"] is None


def test_record_result_warns_instead_of_raising_after_the_training(tmp_path, monkeypatch):
    """Bug caught: a raw IsADirectoryError after the lesson's training had run."""
    monkeypatch.setenv("COURSE_RESULTS", str(tmp_path))  # a folder, not a file
    with pytest.warns(RuntimeWarning, match=r"record_result could not write to COURSE_RESULTS=.*IsADirectoryError"):
        assert train.record_result("07", "run", device="cpu", acc=0.5) is None


@pytest.mark.parametrize("error, cause", [
    (OSError(errno.EROFS, "Read-only file system"), r"OSError: Read-only file system: .* cannot be written"),
    (OSError(errno.ENOSPC, "No space left on device"), r"OSError: No space left on device: free some space"),
    (RuntimeError("[enforce fail at inline_container.cc:778] . unexpected pos 3328 vs 3217"),
     r"the file could not be written out in full: is the disk full"),
])
def test_a_checkpoint_that_cannot_be_written_is_one_checkpoint_error(tmp_path, monkeypatch, error, cause):
    """Bug caught: the raw error about the temporary file, or torch's `enforce fail`, naming nothing."""
    def failing(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half")
        raise error

    monkeypatch.setattr(torch, "save", failing)
    with pytest.raises(train.CheckpointError, match=rf"save_checkpoint could not write .*m\.pt \({cause}"):
        train.save_checkpoint(tmp_path / "m.pt", nn.Linear(2, 2))
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_a_checkpoint_under_a_file_is_one_checkpoint_error(tmp_path):
    """Bug caught: a checkpoint path under a file raising a raw NotADirectoryError."""
    (tmp_path / "file").write_text("")
    with pytest.raises(train.CheckpointError, match=r"could not write .*file/sub/m\.pt \((NotADirectory|FileExists)"):
        train.save_checkpoint(tmp_path / "file" / "sub" / "m.pt", nn.Linear(2, 2))


def test_save_checkpoint_removes_the_temporary_files_of_killed_saves(tmp_path):
    """Bug caught: a save killed mid-write left a hidden .tmp that no later save removed."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".m.pt.{dead.pid}.tmp"
    stale.write_bytes(b"x" * 1000)
    alive = tmp_path / f".m.pt.{os.getppid()}.tmp"  # a process that exists: maybe still saving
    alive.write_bytes(b"x")
    other = tmp_path / f".other.pt.{dead.pid}.tmp"
    other.write_bytes(b"x")
    train.save_checkpoint(tmp_path / "m.pt", nn.Linear(2, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.pt", alive.name, other.name])


def test_param_groups_decay_weights_but_not_biases_or_norms():
    """Bug caught: a group that decays BatchNorm's scale or the biases, or loses a parameter."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    model[0].bias.requires_grad_(False)  # frozen: in no group
    decay, no_decay = train.param_groups(model, 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [(4, 3, 3, 3), (2, 4)]
    assert {id(p) for p in no_decay["params"]} == {id(model[1].weight), id(model[1].bias), id(model[3].bias)}
    optimizer = torch.optim.SGD(train.param_groups(model, 0.1), lr=1.0)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    model.zero_grad()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # zero gradients: only the decay moves anything
    assert torch.allclose(model[0].weight, torch.tensor(0.9)) and model[1].weight.unique().tolist() == [1.0]


# ------------------------------------------------------------------ slips no test saw (probe)
def test_a_batch_whose_targets_are_all_ignored_does_not_turn_the_loss_to_nan():
    """Bug caught: a batch of only -100 targets (its mean loss is nan) multiplied by its weight 0,
    which gives nan, not 0, and turns the epoch's loss to nan."""
    torch.manual_seed(0)
    x, y = torch.randn(12, 5), torch.randint(0, 3, (12,))
    y[4:8] = -100  # the second batch of four: nothing labelled
    model = nn.Linear(5, 3)
    result = train.evaluate(model, data.DeviceLoader(x, y, batch_size=4))
    with torch.no_grad():
        expected = F.cross_entropy(model(x), y).item()  # the mean over the 8 labelled targets
    assert result["loss"] == pytest.approx(expected, rel=1e-5)


def test_early_stopping_counts_an_equal_score_as_no_improvement():
    """Bug caught: >= instead of > with min_delta=0, so a plateau of equal scores keeps 'improving',
    never stops, and restores the last epoch of the plateau instead of the first."""
    model = _Scripted()
    stopper = train.EarlyStopping(model, monitor="val_loss", patience=2)
    for epoch, loss in enumerate([1.0, 0.5, 0.5, 0.5], start=1):
        with torch.no_grad():
            model.w.fill_(epoch)
        stopper(epoch, {"val_loss": loss})
    assert stopper.stop and stopper.best_epoch == 2 and model.w.item() == 2


def test_early_stopping_never_keeps_a_nan_epoch():
    """Bug caught: a first score of nan taken as the best, after which no finite score compares as
    better, so training stops and the nan epoch's weights are restored."""
    model = _Scripted()
    stopper = train.EarlyStopping(model, monitor="val_loss", patience=2)
    for epoch, loss in enumerate([float("nan"), 1.0, 0.9], start=1):
        with torch.no_grad():
            model.w.fill_(epoch)
        stopper(epoch, {"val_loss": loss})
    assert not stopper.stop and stopper.best_epoch == 3 and stopper.best == 0.9


def test_record_result_expands_the_home_folder_and_writes_the_header_first(tmp_path, monkeypatch):
    """Bug caught: COURSE_RESULTS=~/results.jsonl written to a folder named '~', or the values
    written before (and over) the lesson, run, device and mode."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("COURSE_RESULTS", "~/out/results.jsonl")
    record = train.record_result("07", "run", device="cpu", test_acc=0.5, mode="ignored?")
    line = (tmp_path / "out" / "results.jsonl").read_text()
    assert line.startswith('{"lesson": "07", "run": "run", "device": "cpu (')
    assert record == json.loads(line)


@pytest.mark.parametrize("error", [PermissionError(errno.EACCES, "Permission denied"),
                                   PermissionError(errno.EPERM, "Operation not permitted")])
def test_a_checkpoint_folder_without_permission_is_named(tmp_path, monkeypatch, error):
    """Bug caught: only a read-only file system (EROFS) explained, not a folder without write
    permission (EACCES, EPERM), which is the common case."""
    def failing(obj, f, *args, **kwargs):
        raise error

    monkeypatch.setattr(torch, "save", failing)
    with pytest.raises(train.CheckpointError, match=rf"PermissionError: {error.strerror}: .* cannot be written; "
                                                    "save somewhere you can write"):
        train.save_checkpoint(tmp_path / "m.pt", nn.Linear(2, 2))


def test_a_long_mismatch_is_cut_to_twelve_lines_and_says_how_many_more(tmp_path):
    """Bug caught: the cut off by one, so the message shows 11 lines, or miscounts what it left out."""
    path = train.save_checkpoint(tmp_path / "wide.pt", nn.Sequential(*[nn.Linear(2, 2) for _ in range(20)]))
    with pytest.raises(train.CheckpointError) as error:
        train.load_checkpoint(path, nn.Sequential(*[nn.Linear(3, 3) for _ in range(20)]))
    message = str(error.value).splitlines()
    assert len(message) == 1 + 12 + 1  # the headline, 12 lines of torch's message, the count of the rest
    full = train.clean_message(error.value.__cause__, max_lines=None).splitlines()
    assert message[-1] == f"... and {len(full) - 12} more lines" and len(full) > 13
