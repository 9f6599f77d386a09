import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import data, models, train


def _toy(n=64, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    y = x[:, :classes].argmax(1)  # a learnable rule
    return data.DeviceLoader(x, y, batch_size=16, shuffle=True)


def test_split_name_groups_splits_of_one_metric():
    assert train.split_name("train_loss") == ("loss", "train")
    assert train.split_name("val_acc") == ("acc", "val")
    assert train.split_name("test_top_5") == ("top_5", "test")
    assert train.split_name("lr") == ("lr", "lr")
    assert train.split_name("grad_norm") == ("grad_norm", "grad_norm")
    assert train.split_name("train") == ("train", "train")


def test_fit_trains_a_real_mnist_mlp_to_90_percent(mirror):
    torch.manual_seed(0)
    train_loader, test_loader = data.device_loaders("MNIST", "cpu", batch_size=128, limit=10_000)
    model = models.MLP(784, [128], 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = train.fit(model, train_loader, optimizer, epochs=3, val_loader=test_loader, progress=False)
    assert history["epoch"] == [1, 2, 3]
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_acc"][-1] >= 0.90
    assert train.evaluate(model, test_loader)["acc"] == pytest.approx(history["val_acc"][-1])


def test_evaluate_matches_a_hand_computation():
    loader = _toy(n=50)
    model = nn.Linear(5, 3)
    x, y = loader.images, loader.labels
    with torch.no_grad():
        out = model(x)
    result = train.evaluate(model, loader)
    assert result["loss"] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-5)
    assert result["acc"] == pytest.approx((out.argmax(1) == y).float().mean().item())


def test_evaluate_runs_in_eval_mode_and_restores_training_mode():
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


def test_predict_returns_every_prediction_in_order():
    model = nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.9))
    loader = _toy(n=50)
    loader.shuffle = False
    preds, targets = train.predict(model, loader)
    model.eval()
    with torch.no_grad():
        expected = model[0](loader.images).argmax(1)
    assert torch.equal(preds, expected) and torch.equal(targets, loader.labels)
    assert preds.device.type == "cpu"
    model.train()
    train.predict(model, loader)
    assert model.training


def test_fit_calls_callbacks_steps_the_scheduler_and_continues_history():
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


def test_fit_really_updates_the_parameters():
    model = nn.Linear(5, 3)
    before = model.weight.detach().clone()
    train.fit(model, _toy(), torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
    assert not torch.equal(before, model.weight)


def test_fit_does_not_sync_with_the_host_per_batch(monkeypatch):
    """Per-batch .item()/.tolist()/.cpu() calls would stall a GPU; fit may sync once per epoch."""
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
    loader = data.DeviceLoader(torch.randn(8, 6), torch.zeros(8, dtype=torch.long), batch_size=4)
    flattened = nn.Sequential(nn.Linear(6, 3), nn.Flatten(0))  # [4, 6] => [4, 3] => [12]: not one row per target
    with pytest.raises(ValueError, match="12 outputs for a batch of 4"):
        train.fit(flattened, loader, torch.optim.SGD(flattened.parameters(), lr=0.1), progress=False)
    with pytest.raises(ValueError, match="12 outputs for a batch of 4"):
        train.evaluate(flattened, loader)
    with pytest.raises(RuntimeError):  # a wrong input width is PyTorch's own shape error
        train.evaluate(nn.Linear(5, 3), loader)


def test_fit_warns_when_training_diverges():
    model = nn.Linear(5, 1)
    loader = data.DeviceLoader(torch.randn(64, 5) * 100, torch.randn(64, 1) * 100, batch_size=16)
    with pytest.warns(RuntimeWarning, match="diverged"):
        history = train.fit(model, loader, torch.optim.SGD(model.parameters(), lr=10.0), loss_fn=F.mse_loss,
                            epochs=3, progress=False)
    assert "train_acc" not in history


def test_empty_loader_is_an_error():
    model = nn.Linear(5, 3)
    empty = data.DeviceLoader(torch.randn(3, 5), torch.zeros(3, dtype=torch.long), batch_size=4, drop_last=True)
    with pytest.raises(ValueError, match="no batches"):
        train.fit(model, empty, torch.optim.SGD(model.parameters(), lr=0.1), progress=False)


def test_mixed_precision_and_channels_last_run_on_the_cpu():
    torch.manual_seed(0)
    model = models.LeNet5(in_channels=1, image_size=28)
    loader = data.DeviceLoader(torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,)), batch_size=16)
    history = train.fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.01), amp=True,
                        channels_last=True, val_loader=loader, progress=False)
    assert torch.isfinite(torch.tensor(history["train_loss"])).all()
    assert 0 <= history["val_acc"][0] <= 1


# ---------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path):
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
    model = nn.Linear(2, 2)
    path = train.save_checkpoint(tmp_path / "m.pt", model, epoch=1)
    original_save = torch.save

    def crash(obj, f, *args, **kwargs):
        original_save(obj, f, *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        train.save_checkpoint(path, model, epoch=2)
    monkeypatch.undo()
    assert train.load_checkpoint(path, nn.Linear(2, 2)) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_corrupt_missing_and_mismatched_checkpoints_are_clear_errors(tmp_path):
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
    """weights_only=True: a pickled whole model, or a payload, is refused, not executed."""
    torch.save(models.MLP(4, [8], 2), tmp_path / "whole.pt")
    with pytest.raises(train.CheckpointError, match="not a readable checkpoint"):
        train.load_checkpoint(tmp_path / "whole.pt", models.MLP(4, [8], 2))
    torch.save({"model": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(train.CheckpointError, match="not a readable checkpoint"):
        train.load_checkpoint(tmp_path / "evil.pt", models.MLP(4, [8], 2))
    assert not _Payload.ran
