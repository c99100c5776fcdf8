"""Resuming a run whose end is set by the clock, and extending a run: the schedule a resumed run
follows is the one the uninterrupted run followed, and an extended run's rate never jumps back up.

A fake clock makes time deterministic: every training step takes one second and every validation
two, so a --time-budget run stops at the same step, with the same rates, every time."""

import os
import signal

import pytest
from training_runs import records, run_records, tiny_run

import nmt.learner
import nmt.validation
from nmt.commands.train import main
from nmt.learner import Learner
from nmt.validation import Validator

STEP_SECONDS, VALIDATION_SECONDS = 1.0, 2.0
# 40 seconds: the deadline schedule decays over the budget, and validation's reserve counts
DEADLINE = ["--scheduler", "linear", "--warmup", "3", "--log-every", "1", "--valid-every", "5", "--dropout", "0.3"]
DEADLINE += ["--patience", "0"]  # no early stop: the clock or the steps end the run


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """Steps and validations take fixed fake time; ``clock.stop_at`` sends this process SIGTERM
    before that step, as a user stopping the run would."""
    clock = FakeClock()
    clock.stop_at = None
    monkeypatch.setattr(nmt.learner, "time", clock)
    monkeypatch.setattr(nmt.validation, "time", clock)
    one_batch, validate = Learner._one_batch, Validator.validate

    def timed_batch(learner):
        if learner.step + 1 == clock.stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        clock.now += STEP_SECONDS
        one_batch(learner)

    def timed_validation(validator):
        clock.now += VALIDATION_SECONDS / 2
        validate(validator)
        clock.now += VALIDATION_SECONDS / 2

    monkeypatch.setattr(Learner, "_one_batch", timed_batch)
    monkeypatch.setattr(Validator, "validate", timed_validation)
    return clock


def rates(run_dir) -> dict[int, float]:
    return {r["step"]: r["lr"] for r in records(run_dir) if "lr" in r}


def test_a_time_budget_run_stopped_midway_resumes_on_the_uninterrupted_runs_schedule(corpus, tmp_path, clock):
    flags = [*DEADLINE, "--time-budget", str(60 / 60)]
    assert main(tiny_run(corpus, tmp_path / "whole", *flags)) == 0
    whole = rates(tmp_path / "whole")
    stop = 2 * max(whole) // 3  # two thirds of the budget used
    clock.stop_at = stop
    assert main(tiny_run(corpus, tmp_path / "part", *flags)) == 130
    clock.stop_at = None
    assert main(tiny_run(corpus, tmp_path / "part", *flags, "--resume")) == 0

    part = rates(tmp_path / "part")
    assert max(part) == max(whole)  # the same last step: the budget counted the time before the stop
    assert part[stop + 1] == pytest.approx(whole[stop + 1])
    assert whole[stop + 1] < 0.5 * max(whole.values())
    assert run_records(tmp_path / "part") == run_records(tmp_path / "whole")


def test_extending_a_finished_deadline_run_decays_from_its_last_rate_to_the_new_end(corpus, tmp_path, clock):
    assert main(tiny_run(corpus, tmp_path, *DEADLINE, "--max-steps", "12")) == 0
    first = rates(tmp_path)
    assert main(tiny_run(corpus, tmp_path, *DEADLINE, "--max-steps", "30", "--resume")) == 0
    extended = rates(tmp_path)
    assert {step: lr for step, lr in extended.items() if step <= 12} == first
    after = [extended[step] for step in range(13, 31)]
    assert after[0] == pytest.approx(first[12])  # no second warm-up, no jump back up the curve
    assert all(a >= b for a, b in zip(after, after[1:]))  # down to the new end
    assert after[-1] == pytest.approx(0.01 * 3e-3)  # the floor, reached at step 30
