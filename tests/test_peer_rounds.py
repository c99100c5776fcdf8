"""benchmarks/peers/rounds.py: a system's speed counts only against OpenNMT-py timed in the same
round, and many rounds are summed up by their median and quartiles."""

import importlib.util
from pathlib import Path

import pytest

ROUNDS_PY = Path(__file__).resolve().parents[1] / "benchmarks" / "peers" / "rounds.py"
spec = importlib.util.spec_from_file_location("peer_rounds", ROUNDS_PY)
rounds = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rounds)


def timing(system, round_, beam5, greedy):
    return {
        "system": system,
        "round": round_,
        "beam 5": {"sentences_per_s": beam5, "bleu": 48.69},
        "greedy": {"sentences_per_s": greedy, "bleu": 47.34},
    }


def test_each_round_divides_by_the_opennmt_py_of_that_round():
    timings = [
        timing("OpenNMT-py 3.5.1", 1, beam5=100.0, greedy=200.0),
        timing("student", 1, beam5=300.0, greedy=600.0),
        timing("student", 2, beam5=450.0, greedy=700.0),  # the machine was faster in round 2 ...
        timing("OpenNMT-py 3.5.1", 2, beam5=150.0, greedy=300.0),  # ... for OpenNMT-py too
    ]
    assert rounds.ratios(timings) == {"student": [3.0, 3.0]}


def test_greedy_counts_against_opennmt_py_beam_5_as_the_speed_targets_do():
    timings = [timing("OpenNMT-py 3.5.1", 1, beam5=100.0, greedy=200.0), timing("student", 1, 300.0, 500.0)]
    assert rounds.ratios(timings, "greedy") == {"student": [5.0]}


def test_ten_rounds_give_the_median_and_quartiles_reported_for_the_fp32_student():
    # docs/experiments.rst, "An OpenNMT-py trained alone": 3.30 (3.06-4.12), from unrounded ratios
    fp32 = [4.44, 3.40, 2.62, 3.13, 3.20, 2.87, 4.05, 4.34, 3.89, 3.15]
    assert rounds.summary(fp32) == pytest.approx((3.30, 3.06, 4.12), abs=0.006)


def test_a_system_must_be_named_apart_from_the_baseline_and_trained(tmp_path, capsys):
    parser = rounds.argparse.ArgumentParser(prog="rounds.py")
    for spec, says in [
        ("--checkpoint S/best.pt", "write it NAME=FLAGS"),
        ("student=--quantize int8", "give --checkpoint"),
        ("ct2=--systems ctranslate2", "needs --ct2-folder"),
        ("OpenNMT-py int8=--checkpoint S/best.pt", "the baseline's"),
    ]:
        with pytest.raises(SystemExit):
            rounds.parse_system(spec, tmp_path, parser)
        assert says in capsys.readouterr().err


def test_under_four_rounds_the_spread_is_their_range_not_a_guess_beyond_it():
    assert rounds.summary([3.18, 4.26]) == pytest.approx((3.72, 3.18, 4.26))
