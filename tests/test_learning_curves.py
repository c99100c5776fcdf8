"""What a run logs of its progress, and the learning curves drawn from it."""

from training_runs import records, tiny_config

from nmt.__main__ import main as nmt_main
from nmt.training import train


def test_with_label_smoothing_the_training_curve_is_the_plain_cross_entropy_and_the_objective_is_beside_it(tmp_path):
    train(tiny_config(tmp_path, max_steps=6, label_smoothing=0.2))
    lines = [r for r in records(tmp_path) if "train_loss" in r]
    assert len(lines) == 6 and all(r["train_smoothed_loss"] != r["train_loss"] > 0 for r in lines)
    train(tiny_config(tmp_path / "plain", max_steps=6, label_smoothing=0.0))
    assert all("train_smoothed_loss" not in r for r in records(tmp_path / "plain"))


def test_the_plot_command_draws_the_learning_curves_of_real_runs(kept_run, tmp_path):
    assert all("minutes" in r for r in records(kept_run) if "step" in r)
    output = tmp_path / "curves.png"
    assert nmt_main(["plot", str(kept_run), str(kept_run), "-o", str(output)]) == 0
    assert output.read_bytes().startswith(b"\x89PNG") and output.stat().st_size > 10_000
