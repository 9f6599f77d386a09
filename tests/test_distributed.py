"""The course's fit under torchrun: data parallelism, not N copies of one run (lesson 09).

Each test starts a real job, `python -m torch.distributed.run --standalone --nproc_per_node=2`,
on the CPU with the gloo backend, with a timeout, so that a hang fails instead of blocking CI.
"""
import contextlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
import torch

from helpers import data, train

ROOT = Path(__file__).resolve().parent.parent

COMMON = """
import json, sys
from pathlib import Path
import torch
import helpers
from helpers import data, device, train
out = Path(sys.argv[1])
DEVICE = helpers.setup(seed=0)
"""


def _torchrun(tmp_path, body: str, processes: int = 2, timeout: float = 180, env=None):
    script = tmp_path / "job.py"
    script.write_text(COMMON + textwrap.dedent(body))
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               str(script), str(out)]
    job = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    try:
        stdout, stderr = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for process in psutil.Process(job.pid).children(recursive=True):   # torchrun starts each worker in
            with contextlib.suppress(psutil.NoSuchProcess):                 # its own session: kill them all,
                process.kill()                                              # or their pipes keep us waiting
        job.kill()
        stdout, stderr = job.communicate()
        pytest.fail(f"the torchrun job hung for {timeout} s:\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(command, job.returncode, stdout, stderr), out


def _toy(n=96, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    return x, x[:, :3].argmax(1)


TRAINING = """
x = torch.randn(96, 5, generator=torch.Generator().manual_seed(1))
y = x[:, :3].argmax(1)
batch = 16 // device.world_size()            # the same global batch of 16, split over the ranks
loader = data.DeviceLoader(x, y, batch_size=batch, shuffle=True, seed=3)
val = data.DeviceLoader(x[:90], y[:90], batch_size=10)
model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
history = train.fit(model, loader, optimizer, epochs=3, val_loader=val, progress=False)
torch.save({"params": [p.detach() for p in model.parameters()],
            "history": {k: v for k, v in history.items() if k != "train_time"}}, out / f"rank{device.rank()}.pt")
"""


def test_two_processes_with_half_batches_take_the_steps_of_one_with_the_whole_batch(tmp_path):
    """Bug caught: ranks training on the same samples (no sharding), gradients not averaged, or
    different shuffles per rank: then 2 x B/2 is not 1 x B. SGD with momentum and weight decay."""
    done, out = _torchrun(tmp_path, TRAINING)
    assert done.returncode == 0, done.stdout + done.stderr
    torch.manual_seed(0)
    x, y = _toy()
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    history = train.fit(model, data.DeviceLoader(x, y, batch_size=16, shuffle=True, seed=3), optimizer, epochs=3,
                        val_loader=data.DeviceLoader(x[:90], y[:90], batch_size=10), progress=False)
    for rank in (0, 1):
        saved = torch.load(out / f"rank{rank}.pt", weights_only=True)
        for mine, one_process in zip(saved["params"], model.parameters()):
            assert torch.allclose(mine, one_process, atol=1e-5), (rank, mine, one_process)
        for key, values in saved["history"].items():
            assert values == pytest.approx(history[key], rel=1e-5), key


def test_each_rank_sees_its_own_share_and_together_all_of_it(tmp_path):
    """Bug caught: overlapping shares, a lost sample, or the same order in every epoch. An uneven
    training set is padded with repeated samples so that every rank takes as many steps."""
    done, out = _torchrun(tmp_path, """
    for n in (12, 11):
        ids = torch.arange(n)
        train_loader = data.DeviceLoader(ids, ids, batch_size=4, shuffle=True, seed=5)
        eval_loader = data.DeviceLoader(ids, ids, batch_size=4)
        seen = {"len": len(train_loader), "epochs": [torch.cat([y for _, y in train_loader]).tolist() for _ in range(2)],
                "eval": torch.cat([y for _, y in eval_loader]).tolist()}
        (out / f"n{n}_rank{device.rank()}.json").write_text(json.dumps(seen))
    """)
    assert done.returncode == 0, done.stdout + done.stderr
    for n in (12, 11):
        ranks = [json.loads((out / f"n{n}_rank{r}.json").read_text()) for r in (0, 1)]
        assert ranks[0]["len"] == ranks[1]["len"] == 2  # the same number of steps on every rank
        for epoch in (0, 1):
            a, b = ranks[0]["epochs"][epoch], ranks[1]["epochs"][epoch]
            assert len(a) == len(b) == 6 and sorted(set(a) | set(b)) == list(range(n))
            assert len(set(a) & set(b)) == (0 if n == 12 else 1)  # 11: one sample repeated, to even the ranks
        assert ranks[0]["epochs"][0] != ranks[0]["epochs"][1]  # a new shuffle each epoch
        evaluated = ranks[0]["eval"] + ranks[1]["eval"]
        assert sorted(evaluated) == list(range(n))  # evaluation: every sample exactly once


def test_every_rank_has_the_same_history_and_only_rank_0_writes(tmp_path):
    """Bug caught: per-rank metrics (each rank's own half), or every rank writing its own
    checkpoint, results line and TensorBoard file, or printing its own set-up line."""
    done, out = _torchrun(tmp_path, """
    from helpers import log
    x = torch.randn(100, 5, generator=torch.Generator().manual_seed(1))
    y = x[:, :3].argmax(1)
    model = torch.nn.Linear(5, 3)
    with log.TensorBoardLogger(out / "tb") as board:
        history = train.fit(model, data.DeviceLoader(x, y, batch_size=10, shuffle=True),
                            torch.optim.SGD(model.parameters(), lr=0.1), epochs=2,
                            val_loader=data.DeviceLoader(x[:45], y[:45], batch_size=10), callbacks=[board])
    train.record_result("09", "toy", device=DEVICE, val_acc=history["val_acc"][-1])
    train.save_checkpoint(out / "ckpt" / "model.pt", model)
    (out / f"history{device.rank()}.json").write_text(json.dumps(history))
    """, env={"COURSE_RESULTS": str(tmp_path / "out" / "results.jsonl")})
    assert done.returncode == 0, done.stdout + done.stderr
    first, second = (json.loads((out / f"history{r}.json").read_text()) for r in (0, 1))
    assert first == second and len(first["epoch"]) == 2
    assert len((out / "results.jsonl").read_text().splitlines()) == 1
    assert [p.name for p in (out / "ckpt").iterdir()] == ["model.pt"]
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 1
    assert done.stdout.count("| rank 0 of 2 |") == 1 and "rank 1 of 2" not in done.stdout


def test_a_rank_that_fails_ends_the_whole_job_with_its_error(tmp_path):
    """Bug caught: the other rank waiting for ever in an all-reduce after one rank raised."""
    done, _ = _torchrun(tmp_path, """
    x = torch.randn(64, 5)
    if device.rank() == 1:
        x = x[:, :4]                          # bad data on one rank only
    model = torch.nn.Linear(5, 3)
    train.fit(model, data.DeviceLoader(x, torch.zeros(64, dtype=torch.long), batch_size=8, shuffle=True),
              torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, progress=False)
    """, timeout=120)
    assert done.returncode != 0
    assert "mat1 and mat2 shapes cannot be multiplied" in done.stderr and "[rank1]" in done.stderr


def test_a_plain_dataloader_is_refused_and_a_distributed_sampler_is_used(tmp_path):
    """Bug caught: a DataLoader without a DistributedSampler silently giving every rank all the data."""
    done, out = _torchrun(tmp_path, """
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
    dataset = TensorDataset(torch.randn(40, 5), torch.zeros(40, dtype=torch.long))
    model = torch.nn.Linear(5, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    try:
        train.fit(model, DataLoader(dataset, batch_size=10), optimizer, progress=False)
    except ValueError as error:
        (out / f"refused{device.rank()}.txt").write_text(str(error))
    sampler = DistributedSampler(dataset, seed=0)
    seen = []
    model.register_forward_hook(lambda m, inputs, output: seen.append(len(inputs[0])))
    train.fit(model, DataLoader(dataset, batch_size=10, sampler=sampler), optimizer, epochs=2, progress=False)
    (out / f"seen{device.rank()}.json").write_text(json.dumps({"seen": seen, "epoch": sampler.epoch}))
    """)
    assert done.returncode == 0, done.stdout + done.stderr
    for r in (0, 1):
        assert "without a DistributedSampler: under torchrun every one of the 2 ranks" in \
            (out / f"refused{r}.txt").read_text()
        record = json.loads((out / f"seen{r}.json").read_text())
        assert record == {"seen": [10, 10, 10, 10], "epoch": 2}  # 20 samples a rank an epoch; set_epoch called


def test_predict_gives_every_rank_all_the_predictions_in_order(tmp_path):
    done, out = _torchrun(tmp_path, """
    x = torch.arange(11.).view(11, 1)
    model = torch.nn.Linear(1, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model.bias.copy_(torch.tensor([-5.5, 5.5]))    # class 0 for x > 5.5, else class 1
    preds, targets = train.predict(model, data.DeviceLoader(x, torch.arange(11), batch_size=3))
    (out / f"predict{device.rank()}.json").write_text(json.dumps([preds.tolist(), targets.tolist()]))
    """)
    assert done.returncode == 0, done.stdout + done.stderr
    expected = [[1] * 6 + [0] * 5, list(range(11))]
    for r in (0, 1):
        assert json.loads((out / f"predict{r}.json").read_text()) == expected


def test_sync_batchnorm_on_the_cpu_is_one_clear_error(tmp_path):
    done, _ = _torchrun(tmp_path, """
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 3))
    loader = data.DeviceLoader(torch.randn(32, 5), torch.zeros(32, dtype=torch.long), batch_size=8, shuffle=True)
    train.fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), sync_batchnorm=True, progress=False)
    """, timeout=120)
    assert done.returncode != 0 and "sync_batchnorm=True needs CUDA" in done.stderr


def test_outside_torchrun_there_is_one_process_of_rank_0(monkeypatch):
    """Bug caught: a single-process run taken for a distributed one (or the reverse)."""
    from helpers import device

    for name in device.TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not device.launched_by_torchrun() and not device.distributed()
    assert (device.rank(), device.world_size(), device.is_main_process()) == (0, 1, True)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not device.launched_by_torchrun()  # WORLD_SIZE missing: not torchrun's full set
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert device.launched_by_torchrun()
    loader = data.DeviceLoader(torch.arange(5), torch.arange(5), batch_size=2, shuffle=True)
    assert len(loader) == 3 and sorted(torch.cat([y for _, y in loader]).tolist()) == [0, 1, 2, 3, 4]


def test_every_rank_validates_rank_0s_batchnorm_statistics(tmp_path):
    """Bug caught: each rank validating with the running statistics of its own last batch, so
    that the ranks score slightly different models (and none is the one rank 0 saves)."""
    done, out = _torchrun(tmp_path, """
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(1)) * (1 + device.rank())
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 3))
    train.fit(model, data.DeviceLoader(x, torch.zeros(64, dtype=torch.long), batch_size=8, shuffle=True),
              torch.optim.SGD(model.parameters(), lr=0.1), val_loader=data.DeviceLoader(x, torch.zeros(64,
              dtype=torch.long), batch_size=8), progress=False)
    torch.save(model[1].running_mean, out / f"mean{device.rank()}.pt")
    """)
    assert done.returncode == 0, done.stdout + done.stderr
    means = [torch.load(out / f"mean{r}.pt", weights_only=True) for r in (0, 1)]
    assert torch.equal(means[0], means[1])
