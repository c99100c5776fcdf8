"""Faults during training: signals, killed writes, non-finite losses, full disks, out of memory,
and checkpoints that are damaged, crafted or from elsewhere."""

import errno
import math
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from training_runs import run_records, start_training, tiny_run, train_losses, validations, wait_for_step

import nmt.training
from nmt.callbacks import Checkpointer
from nmt.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from nmt.commands.train import main
from nmt.learner import Learner
from nmt.loss import Loss, sequence_loss
from nmt.models.seq2seq import RNNSeq2Seq
from nmt.run_dir import LOCK, check_run_dir

ROOT = Path(__file__).resolve().parent.parent


# What resuming must restore, all exercised: dropout (the RNG), a plateau schedule and early
# stopping (their state; this run stops early, after about 100 steps), validation every 7
# steps (mid-epoch), and a training loss logged at every step.
RESUMABLE = (
    "--dropout",
    "0.3",
    "--scheduler",
    "plateau",
    "--patience",
    "12",
    "--valid-every",
    "7",
    "--log-every",
    "1",
    "--max-steps",
    "150",
)


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    assert main(tiny_run(corpus, run_dir, *RESUMABLE)) == 0
    return run_dir


@pytest.mark.parametrize(
    "sig, program, typed",
    [
        (signal.SIGTERM, ("train_nmt.py",), "train_nmt.py"),
        (signal.SIGINT, ("-m", "nmt", "train"), "python -m nmt train"),
    ],
)
def test_a_signalled_run_saves_last_pt_and_resumes_exactly_like_an_uninterrupted_one(
    corpus, uninterrupted, tmp_path, sig, program, typed
):
    run = tiny_run(corpus, tmp_path / "interrupted", *RESUMABLE)
    interrupted = start_training(run, stderr=tmp_path / "stderr", program=program)
    wait_for_step(tmp_path / "interrupted", 5, interrupted)
    interrupted.send_signal(sig)
    interrupted.wait(timeout=60)
    stderr = (tmp_path / "stderr").read_text()
    assert interrupted.returncode == 130, stderr
    stopped_at = torch.load(tmp_path / "interrupted" / "last.pt", weights_only=True)["progress"]["step"]
    assert 5 <= stopped_at < 150
    assert f"at step {stopped_at}" in stderr.splitlines()[-1]
    assert f"Continue with: {typed} --resume --run-dir " in stderr.splitlines()[-1]  # as the user started it
    assert "Traceback" not in stderr

    assert main(tiny_run(corpus, tmp_path / "interrupted", *RESUMABLE, "--resume")) == 0

    assert train_losses(tmp_path / "interrupted") == train_losses(uninterrupted)
    assert validations(tmp_path / "interrupted") == validations(uninterrupted)
    assert stopped_at < train_losses(uninterrupted)[-1][0]
    resumed = torch.load(tmp_path / "interrupted" / "last.pt", weights_only=True)
    whole = torch.load(uninterrupted / "last.pt", weights_only=True)
    assert resumed["model"].keys() == whole["model"].keys()
    assert all(torch.equal(resumed["model"][k], whole["model"][k]) for k in whole["model"])


# A process killed while it saves --------------------------------------------------------------

KILLED_SAVE = """
import sys, time, torch
from nmt.checkpoint import save_checkpoint

def save_to_a_stalling_disk(obj, f):  # half of it written, then the process is killed
    f.write(b"PK" * 1000)
    f.flush()
    time.sleep(60)

torch.save = save_to_a_stalling_disk
save_checkpoint(sys.argv[1], {"model": {"w": torch.zeros(3)}})
"""


def test_a_save_killed_midway_leaves_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(3)}})
    good = path.read_bytes()
    (tmp_path / "save.py").write_text(KILLED_SAVE)
    process = subprocess.Popen([sys.executable, str(tmp_path / "save.py"), str(path)], cwd=ROOT)
    temporary = tmp_path / f".last.pt.tmp-{process.pid}"
    while not (temporary.exists() and temporary.stat().st_size > 0):
        assert process.poll() is None, "the save finished before it could be killed"
        time.sleep(0.001)
    process.kill()
    process.wait()

    assert path.read_bytes() == good
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([temporary.name, "last.pt", "save.py"])


def test_training_clears_the_temporary_files_of_saves_that_never_finished(tmp_path):
    for leftover in (".last.pt.tmp-4242", ".best.pt.tmp-4243"):
        (tmp_path / leftover).write_bytes(b"half a checkpoint")
    (tmp_path / "last.pt").write_bytes(b"kept")
    check_run_dir(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


# best.pt --------------------------------------------------------------------------------------


def test_best_pt_is_never_replaced_by_a_worse_model_even_after_a_resume(tmp_path):
    model = torch.nn.Linear(2, 2)
    checkpointer = Checkpointer(tmp_path, lambda: {})
    learner = Learner(
        model,
        batches=lambda epoch, start: [],
        loss_fn=None,
        optimizer=torch.optim.Adam(model.parameters()),
        callbacks=[checkpointer],
    )

    def validate(bleu: float) -> bytes:
        with torch.no_grad():
            model.weight.add_(1.0)  # a different model at every validation
        learner.metrics = {"valid_bleu": bleu}
        checkpointer.after_validate()
        return (tmp_path / "best.pt").read_bytes()

    best = validate(10.0)
    assert validate(5.0) == best
    assert validate(10.0) == best  # a tie is no improvement
    resumed = Checkpointer(tmp_path, lambda: {})
    resumed.load_state_dict(checkpointer.state_dict())
    resumed.learner, checkpointer = learner, resumed
    assert validate(9.0) == best
    assert validate(12.0) != best
    assert load_checkpoint(tmp_path / "best.pt")["progress"]["metrics"]["valid_bleu"] == 12.0


# Non-finite losses ----------------------------------------------------------------------------


@pytest.fixture
def poison_losses(monkeypatch):
    """``poison(batches, then, gradient)``: the training losses of the listed batches (counting
    from 1) become NaN, or with ``gradient`` stay finite but give NaN gradients; ``then()``
    runs before the first. Validation losses are left alone."""

    def poison(batches, then=lambda: None, gradient=False):
        calls = []

        def loss(logits, target, **kwargs):
            value = sequence_loss(logits, target, **kwargs)
            if not torch.is_grad_enabled():
                return value
            calls.append(1)
            if len(calls) not in batches:
                return value
            if len(calls) == min(batches):
                then()
            if gradient:
                # adds 0, but d sqrt(u)/du at 0 is inf, and inf * 0 is NaN
                return Loss(value.objective + (logits * 0).sum().sqrt(), value.cross_entropy)
            return Loss(value.objective * float("nan"), value.cross_entropy * float("nan"))

        monkeypatch.setattr(nmt.training, "sequence_loss", loss)

    return poison


@pytest.mark.parametrize("what", ["loss", "gradient"])
def test_a_nan_loss_or_gradient_skips_its_update_and_is_counted(corpus, tmp_path, poison_losses, caplog, what):
    constant_rate = ("--scheduler", "none", "--log-every", "2")  # a deadline schedule would depend on --max-steps
    assert main(tiny_run(corpus, tmp_path / "three", "--max-steps", "3", *constant_rate)) == 0
    poison_losses({4}, gradient=what == "gradient")
    assert main(tiny_run(corpus, tmp_path / "four", "--max-steps", "4", *constant_rate)) == 0
    assert "steps 3-4: updates skipped for a non-finite loss or gradient: 1 (1 in a row at most)" in caplog.text
    three, four = load_checkpoint(tmp_path / "three/last.pt"), load_checkpoint(tmp_path / "four/last.pt")
    assert four["callbacks"]["SkipNonFiniteLoss"]["skipped"] == 1
    assert four["progress"]["step"] == 4  # the step counts, but changed nothing:
    assert all(torch.equal(three["model"][name], w) for name, w in four["model"].items())
    moments = [(s["step"], s["exp_avg"], s["exp_avg_sq"]) for s in three["optimizer"]["state"].values()]
    assert all(
        all(torch.equal(a, b) for a, b in zip(mine, (s["step"], s["exp_avg"], s["exp_avg_sq"])))
        for mine, s in zip(moments, four["optimizer"]["state"].values())
    )
    assert all(math.isfinite(loss) for _, loss in train_losses(tmp_path / "four"))  # the NaN is left out


def test_the_training_loss_of_a_window_leaves_out_the_skipped_update(corpus, tmp_path, poison_losses):
    assert main(tiny_run(corpus, tmp_path / "every", "--max-steps", "4", "--log-every", "1")) == 0
    poison_losses({2}, gradient=True)  # the loss itself stays finite
    assert main(tiny_run(corpus, tmp_path / "poisoned", "--max-steps", "4", "--log-every", "2")) == 0
    unpoisoned = dict(train_losses(tmp_path / "every"))
    assert train_losses(tmp_path / "poisoned")[0] == (2, pytest.approx(unpoisoned[1], rel=1e-6))


def test_nan_losses_in_a_row_stop_training_with_one_error_and_leave_the_checkpoints_untouched(
    corpus, tmp_path, poison_losses, capsys
):
    saved = {}
    # An epoch is 12 batches: the checkpoints are saved after the first, and the NaN losses from
    # the start of the second end training at the validation that closes it, before any save.
    poison_losses(range(13, 1000), then=lambda: saved.update({p.name: p.read_bytes() for p in tmp_path.glob("*.pt")}))
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "100")) == 1
    assert (
        capsys.readouterr().err.strip().splitlines()[-1]
        == "error: 12 steps in a row with a non-finite loss or gradient: stopping; lower --lr or check the data"
    )
    assert set(saved) == {"best.pt", "last.pt"}
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.pt")} == saved


def test_the_non_finite_check_is_read_every_log_every_steps(corpus, tmp_path, poison_losses, capsys):
    poison_losses(range(1, 1000))
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "100", "--log-every", "5")) == 1
    # read at steps 5 and 10, before the first validation (step 12) would read it
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: 10 steps in a row")


# A full disk ----------------------------------------------------------------------------------


def test_a_full_disk_at_a_save_stops_with_one_error_and_keeps_the_previous_checkpoint(
    corpus, tmp_path, monkeypatch, capsys
):
    real_save, saved = torch.save, {}

    def save_until_the_disk_fills(obj, f):
        if obj["progress"]["step"] < 6:
            return real_save(obj, f)
        saved.update({p.name: p.read_bytes() for p in tmp_path.glob("*.pt")})
        f.write(b"the first bytes of a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what torch.save raises on a full disk

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "20", "--valid-every", "3")) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and "No space left on device" in error and "earlier" in error
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.pt")} == saved
    assert [p.name for p in tmp_path.glob(".*")] == [LOCK]  # no temporary file left, the run's lock aside


# Out of GPU memory ----------------------------------------------------------------------------


def test_batches_that_keep_running_out_of_memory_stop_the_run_naming_the_budget_to_lower(
    corpus, tmp_path, monkeypatch, capsys
):
    def forward(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(RNNSeq2Seq, "forward", forward)
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "5", "--batch-tokens", "100")) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: out of memory at step 1") and "10 batches in a row" in error
    assert "lower --batch-tokens (now 100), or raise --accum-steps (now 1)" in error


def test_a_batch_that_runs_out_of_memory_is_skipped_with_a_warning_and_the_run_goes_on(
    corpus, tmp_path, monkeypatch, caplog
):
    forward, calls = RNNSeq2Seq.forward, []

    def out_of_memory_on_the_third_batch(self, *args, **kwargs):
        calls.append(self.training)
        if calls.count(True) == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(RNNSeq2Seq, "forward", out_of_memory_on_the_third_batch)
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "5", "--log-every", "1")) == 0
    assert [step for step, _ in train_losses(tmp_path)] == [1, 2, 3, 4, 5]  # six batches for five steps
    assert calls.count(True) == 6
    assert "out of memory at step 3 on a batch of 16 sentences" in caplog.text and "lower --batch-size" in caplog.text


# Loading checkpoints --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_checkpoint(corpus, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("tiny")
    assert main(tiny_run(corpus, run_dir, "--max-steps", "3")) == 0
    return run_dir / "last.pt"


class RunsCode:
    """Unpickling this would create ``marker``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def assert_refused(path: Path, *words: str) -> str:
    with pytest.raises(CheckpointError) as refusal:
        load_model(path)
    message = str(refusal.value)
    assert len(message.splitlines()) == 1 and str(path) in message
    assert all(word in message for word in words), message
    return message


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    torch.save({"format_version": 1, "config": RunsCode(marker)}, tmp_path / "crafted.pt")
    with open(tmp_path / "pickled.pt", "wb") as f:
        pickle.dump({"format_version": 1, "config": RunsCode(marker)}, f, protocol=2)
    assert_refused(tmp_path / "crafted.pt", "refused", "system")
    assert_refused(tmp_path / "pickled.pt", "refused", "system")
    assert not marker.exists()


def test_every_checkpoint_load_in_the_package_is_weights_only():
    calls = [
        (path.name, line)
        for path in (ROOT / "nmt").rglob("*.py")
        for line in path.read_text().splitlines()
        if "torch.load(" in line
    ]
    assert calls and all("weights_only=True" in line for _, line in calls), calls


def test_a_checkpoint_from_a_newer_format_is_refused_naming_both_versions(tiny_checkpoint, tmp_path):
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    torch.save({**ckpt, "format_version": FORMAT_VERSION + 1, "nmt_version": "9.0"}, tmp_path / "newer.pt")
    assert_refused(tmp_path / "newer.pt", f"format {FORMAT_VERSION + 1}", "9.0", "upgrade")


def test_a_format_1_checkpoint_loads_as_the_same_model(corpus, tmp_path):
    """Format 1 spelt the target "tgt", kept the time trained in the stop rule, and tied no RNN
    embeddings whatever its (then Transformer-only) tie_embeddings said."""
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "3", "--no-tie-embeddings")) == 0
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    old = {**ckpt, "format_version": 1, "config": {**ckpt["config"], "data": {**ckpt["config"]["data"]}}}
    old["config"]["data"]["tgt"] = old["config"]["data"].pop("trg")
    old["config"]["model"] = {**ckpt["config"]["model"], "tie_embeddings": True}
    old["tokenizers"] = {**ckpt["tokenizers"]}
    old["tokenizers"]["tgt"] = old["tokenizers"].pop("trg")
    old["progress"] = {k: v for k, v in ckpt["progress"].items() if k != "elapsed"}
    old["callbacks"] = {**ckpt["callbacks"], "StopRule": {"elapsed": 12.5}}
    torch.save(old, tmp_path / "format-1.pt")
    model, _, _, config = load_model(tmp_path / "format-1.pt")
    expected, _, _, expected_config = load_model(tmp_path / "last.pt")
    assert config == expected_config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), expected.state_dict().values()))
    assert load_checkpoint(tmp_path / "format-1.pt")["progress"]["elapsed"] == 12.5


@pytest.mark.parametrize("keep", [0, 100, 0.5, -1], ids=["empty", "header", "half", "all-but-one-byte"])
def test_a_truncated_checkpoint_is_refused(tiny_checkpoint, tmp_path, keep):
    data = tiny_checkpoint.read_bytes()
    size = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    (tmp_path / "cut.pt").write_bytes(data[:size])
    assert_refused(tmp_path / "cut.pt", "truncated")


@pytest.mark.parametrize(
    "content", [b"hello", b"PK\x03\x04 not a zip", bytes(range(256)) * 10], ids=["text", "zip-header", "bytes"]
)
def test_a_file_that_is_no_checkpoint_is_refused(tmp_path, content):
    (tmp_path / "other.pt").write_bytes(content)
    assert_refused(tmp_path / "other.pt", "not a checkpoint")


def test_a_checkpoint_whose_vocabulary_does_not_match_its_weights_is_refused(tiny_checkpoint, tmp_path):
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    vocab = ckpt["tokenizers"]["src"]
    ckpt["tokenizers"]["src"] = {**vocab, "words": vocab["words"][:-5], "counts": vocab["counts"][:-5]}
    torch.save(ckpt, tmp_path / "mismatch.pt")
    assert_refused(tmp_path / "mismatch.pt", "weights do not match", "size mismatch")


@pytest.mark.parametrize("damage", ["no config", "unknown option", "bad tokenizer"])
def test_a_checkpoint_with_a_damaged_config_or_tokenizer_is_refused(tiny_checkpoint, tmp_path, damage):
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    if damage == "no config":
        del ckpt["config"]
    elif damage == "unknown option":
        ckpt["config"]["model"]["warp_drive"] = True
    else:
        ckpt["tokenizers"]["src"] = {"kind": "spm", "name": "en", "model": b"not a sentencepiece model"}
    torch.save(ckpt, tmp_path / "damaged.pt")
    assert_refused(tmp_path / "damaged.pt")


def test_resuming_from_a_crafted_last_pt_is_one_error_line(tmp_path, corpus, capsys):
    marker = tmp_path / "marker"
    torch.save({"format_version": 1, "config": RunsCode(marker)}, tmp_path / "last.pt")
    assert main(tiny_run(corpus, tmp_path, "--resume")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "refused" in err[0]
    assert not marker.exists()


def test_a_killed_run_resumes_from_its_periodic_save_exactly_like_an_uninterrupted_one(corpus, uninterrupted, tmp_path):
    run_dir = tmp_path / "killed"
    argv = tiny_run(corpus, run_dir, *RESUMABLE, "--save-every", "0.003")  # about every 0.2 s
    killed = start_training(argv, stderr=tmp_path / "stderr")
    while killed.poll() is None and not (run_dir / "last.pt").exists():
        time.sleep(0.01)
    wait_for_step(run_dir, 40, killed)
    killed.kill()  # SIGKILL: no handler runs, nothing is saved on the way out
    killed.wait(timeout=60)
    saved_at = torch.load(run_dir / "last.pt", weights_only=True)["progress"]["step"]
    assert 0 < saved_at < 150 and killed.returncode == -signal.SIGKILL

    assert main(tiny_run(corpus, run_dir, *RESUMABLE, "--save-every", "0.003", "--resume")) == 0

    assert train_losses(run_dir) == train_losses(uninterrupted)  # the steps logged after the save are redone
    assert validations(run_dir) == validations(uninterrupted)
    resumed = torch.load(run_dir / "last.pt", weights_only=True)["model"]
    whole = torch.load(uninterrupted / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(resumed[k], whole[k]) for k in whole)


def test_resume_refuses_a_flag_that_would_make_another_run_and_takes_the_stopping_rule(corpus, tmp_path, capsys):
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "3", "--lr", "0.003")) == 0
    capsys.readouterr()
    for changed in (["--lr", "0.5"], ["--scheduler", "inverse_sqrt"], ["--enc-hidden", "32"], ["--max-len", "9"]):
        assert main(tiny_run(corpus, tmp_path, "--max-steps", "6", "--resume", *changed)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {changed[0]} ") and "a resumed run keeps its" in err[0]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["progress"]["step"] == 3  # nothing trained
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "6", "--patience", "2", "--resume")) == 0
    resumed = torch.load(tmp_path / "last.pt", weights_only=True)
    assert resumed["progress"]["step"] == 6 and resumed["config"]["train"]["patience"] == 2


@pytest.mark.parametrize("scheduler", ["plateau", "inverse_sqrt"])
def test_a_run_stopped_by_its_step_limit_and_extended_with_resume_is_the_longer_run(corpus, tmp_path, scheduler):
    """The 10-step run ends with a report of its scores; the 40-step run never validated at step
    10, so the report may change nothing it sees: schedule, patience, best score, metrics."""
    flags = ["--dropout", "0.3", "--scheduler", scheduler, "--warmup", "5", "--patience", "3"]
    flags += ["--valid-every", "7", "--log-every", "1", "--lr", "0.01"]
    assert main(tiny_run(corpus, tmp_path / "whole", *flags, "--max-steps", "40")) == 0
    assert main(tiny_run(corpus, tmp_path / "part", *flags, "--max-steps", "10")) == 0
    assert any(r[-1] for r in run_records(tmp_path / "part"))  # the shorter run did report at step 10
    assert main(tiny_run(corpus, tmp_path / "part", *flags, "--max-steps", "40", "--resume")) == 0

    assert run_records(tmp_path / "part") == run_records(tmp_path / "whole")
    extended = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    assert extended["progress"]["step"] == whole["progress"]["step"]
    assert without_clock(extended["callbacks"]) == without_clock(whole["callbacks"])  # schedule, patience, best...
    assert all(torch.equal(extended["model"][k], whole["model"][k]) for k in whole["model"])


def without_clock(callbacks: dict) -> dict:
    """Callback states less what the wall clock sets (how long the last validation took)."""
    return {**callbacks, "Validator": {k: v for k, v in callbacks["Validator"].items() if k != "last_duration"}}


def test_a_signalled_run_with_an_inverse_sqrt_schedule_resumes_exactly(corpus, tmp_path):
    flags = [*RESUMABLE[:2], "--scheduler", "inverse_sqrt", "--warmup", "20", *RESUMABLE[4:]]
    assert main(tiny_run(corpus, tmp_path / "whole", *flags)) == 0
    interrupted = start_training(tiny_run(corpus, tmp_path / "part", *flags), stderr=tmp_path / "stderr")
    wait_for_step(tmp_path / "part", 5, interrupted)
    interrupted.send_signal(signal.SIGTERM)
    interrupted.wait(timeout=60)
    assert interrupted.returncode == 130, (tmp_path / "stderr").read_text()
    assert main(tiny_run(corpus, tmp_path / "part", *flags, "--resume")) == 0
    assert run_records(tmp_path / "part") == run_records(tmp_path / "whole")
    resumed = torch.load(tmp_path / "part" / "last.pt", weights_only=True)["model"]
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(resumed[k], whole[k]) for k in whole)
