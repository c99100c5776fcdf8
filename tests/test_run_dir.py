"""A run folder has one owner: a second run is refused while the first trains, and a new run
does not write over a finished run's files unless told to."""

import json
import os
import signal
import time

from training_runs import records, start_training, tiny_run, wait_for_step

from nmt.commands.train import main

LONG = ("--max-steps", "100000", "--log-every", "1")


def test_a_second_run_into_a_folder_in_use_is_refused_naming_the_first(corpus, tmp_path, capsys):
    first = start_training(tiny_run(corpus, tmp_path / "run", *LONG), stderr=tmp_path / "stderr")
    try:
        wait_for_step(tmp_path / "run", 3, first)
        before = (tmp_path / "run" / "metrics.jsonl").read_bytes()
        for extra in ([], ["--resume"], ["--overwrite"]):
            assert main(tiny_run(corpus, tmp_path / "run", "--max-steps", "2", *extra)) == 1
            [error] = capsys.readouterr().err.strip().splitlines()
            in_use = f"error: {tmp_path / 'run'} is in use by another training run (process {first.pid} "
            assert error.startswith(in_use)
            assert "train_nmt.py --corpus" in error
        assert (tmp_path / "run" / "metrics.jsonl").read_bytes().startswith(before)  # the first run's, going on
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    assert first.returncode == 130


def test_a_new_run_over_a_finished_runs_files_is_refused_unless_told_to_overwrite(corpus, tmp_path, capsys):
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "4", "--log-every", "1")) == 0
    finished = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "2")) == 1
    [error] = capsys.readouterr().err.strip().splitlines()
    assert error == (
        f"error: {tmp_path} holds another run's files (best.pt, last.pt, metrics.jsonl): continue that run "
        "with --resume, choose another --run-dir, or add --overwrite to delete them"
    )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == finished
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "2", "--log-every", "1", "--overwrite")) == 0
    assert [r["step"] for r in records(tmp_path) if "train_loss" in r] == [1, 2]  # only the new run's


def test_a_killed_run_leaves_no_lock_behind(corpus, tmp_path):
    killed = start_training(tiny_run(corpus, tmp_path, *LONG, "--save-every", "0.001"), stderr=tmp_path / "stderr")
    wait_for_step(tmp_path, 5, killed)
    while not (tmp_path / "last.pt").exists() and killed.poll() is None:
        time.sleep(0.01)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    owner = json.loads((tmp_path / ".owner").read_text())
    assert owner["pid"] == killed.pid  # what a refusal would have named
    assert main(tiny_run(corpus, tmp_path, "--max-steps", "8", "--resume")) == 0
    assert not (tmp_path / ".owner").exists()
