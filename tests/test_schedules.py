"""Learning-rate schedules and scheduled sampling, each against its definition."""

import math

import pytest
from training_runs import records, tiny_config

from nmt.config import Config, ConfigError, ModelConfig, TrainConfig
from nmt.schedules import DeadlineSchedule, InverseSqrtSchedule, TeacherForcingSchedule
from nmt.training import train


def test_the_inverse_sqrt_rate_rises_linearly_peaks_at_the_warmup_and_falls_as_one_over_sqrt_step():
    schedule = InverseSqrtSchedule(peak_lr=1e-3, warmup=100)
    assert schedule.rate(1) == pytest.approx(1e-5)
    assert schedule.rate(50) == pytest.approx(5e-4)
    assert schedule.rate(100) == pytest.approx(1e-3)
    assert schedule.rate(400) == pytest.approx(1e-3 * math.sqrt(100 / 400))
    assert max(schedule.rate(s) for s in range(1, 1000)) == schedule.rate(100)


def test_the_deadline_schedule_warms_up_and_ends_at_its_floor_at_the_last_step(tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir, max_steps=20, scheduler="cosine", warmup=4, lr_floor=0.05, lr=1e-2))
    rates = [r["lr"] for r in records(run_dir) if "lr" in r]
    assert len(rates) == 20
    assert rates[0] == pytest.approx(1e-2 / 4 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi / 20))))
    assert max(rates) == rates[3] and rates[-1] == pytest.approx(1e-2 * 0.05)
    assert all(a >= b for a, b in zip(rates[3:], rates[4:]))


@pytest.mark.parametrize("shape", ["linear", "cosine"])
def test_the_deadline_rate_falls_from_the_peak_to_the_floor(shape):
    schedule = DeadlineSchedule(2.0, warmup=0, shape=shape, floor=0.1, epochs=1, batches_per_epoch=lambda epoch: 100)
    assert schedule.rate(1, 0.0) == pytest.approx(2.0)
    assert schedule.rate(50, 0.5) == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))
    assert schedule.rate(100, 1.0) == schedule.rate(200, 1.7) == pytest.approx(0.2)


def test_without_a_step_or_time_limit_the_deadline_is_the_last_epoch(tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir, epochs=2, scheduler="linear", warmup=0, lr_floor=0.1, lr=1e-2))
    rates = [r["lr"] for r in records(run_dir) if "lr" in r]
    assert rates[-1] == pytest.approx(1e-3) and rates[0] > rates[len(rates) // 2] > rates[-1]


@pytest.mark.parametrize(
    "shape, k, step, expected",
    [
        ("constant", 1000, 1, 0.75),
        ("linear", 100, 50, 0.5),
        ("linear", 100, 90, 0.25),  # the floor
        ("exponential", 0.99, 10, 0.99**10),
        ("inverse_sigmoid", 10, 20, 10 / (10 + math.exp(2))),
    ],
)
def test_scheduled_sampling_decays_the_reference_probability_to_its_floor(shape, k, step, expected):
    floor = 0.75 if shape == "constant" else 0.25
    assert TeacherForcingSchedule(shape, k=k, floor=floor).probability(step) == pytest.approx(expected)


def test_scheduled_sampling_is_refused_for_the_transformer_and_needs_a_k_that_fits_its_schedule():
    with pytest.raises(ConfigError, match="scheduled sampling\\) is for the RNN"):
        Config(model=ModelConfig(arch="transformer"), train=TrainConfig(teacher_forcing=0.9))
    with pytest.raises(ConfigError, match="the exponential schedule needs 0 < k < 1"):
        TrainConfig(teacher_forcing=0.5, teacher_forcing_schedule="exponential", teacher_forcing_k=5)
