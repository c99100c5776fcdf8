"""Speed ratios to OpenNMT-py that hold up: trained systems timed in turns, many rounds, medians.

On a shared 2-core machine the same command can take twice as long from one minute to the next,
so one ratio of two timings says little (single rounds of one pair ranged from 2.6 to 4.9 times;
docs/experiments.rst, "An OpenNMT-py trained alone"). Here every round times OpenNMT-py's searches
and each system's, whole commands as compare.py times them, in an order that rotates from round
to round; each system's speed is then divided by OpenNMT-py's in the same round, and the table
gives every round's ratio, their median and quartiles::

    python benchmarks/peers/compare.py --work W --systems opennmt --train-only   # once, alone
    python benchmarks/peers/rounds.py --work W --rounds 10 \\
        --system "student=--checkpoint S/best.pt" \\
        --system "student int8=--checkpoint S/best.pt --quantize int8" \\
        --system "ct2=--systems ctranslate2 --ct2-folder CT2 --checkpoint S/best.pt"

A system is ``NAME=FLAGS``, FLAGS being compare.py's for one trained system (nmt unless
``--systems ctranslate2``). Every timing is also appended to W/results.jsonl with its round.
Nothing else should run meanwhile; a round of OpenNMT-py and two systems took a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="compare.py's work folder, OpenNMT-py trained in it")
    parser.add_argument("--venv", type=Path, default=compare.HERE / ".venv-opennmt", help="OpenNMT-py's environment")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of timings (default: 10)")
    parser.add_argument(
        "--system", action="append", default=[], metavar="NAME=FLAGS", help="a trained system to time, repeatable"
    )
    args = parser.parse_args()
    if not args.system:
        parser.error("give at least one --system NAME=FLAGS")
    if args.rounds < 1:
        parser.error(f"--rounds: at least 1, not {args.rounds}")
    work = args.work.resolve()
    systems = [parse_system(spec, work, parser) for spec in args.system]
    test = compare.prepare_data(work)
    timings = []
    for round_ in range(1, args.rounds + 1):
        turns = [None, *systems]  # None: OpenNMT-py
        shift = (round_ - 1) % len(turns)
        for system in turns[shift:] + turns[:shift]:
            if system is None:
                result = compare.run_opennmt(work, args.venv, 0, test, retime=True)
            elif system.systems == "ctranslate2":
                result = compare.run_ctranslate2(work, system, test)
            else:
                result = compare.run_nmt(work, system, test)
            result["round"] = round_
            compare.record(work, result, echo=False)
            timings.append(result)
        print(f"round {round_} of {args.rounds} done, {time.strftime('%H:%M:%S')}", flush=True)
    print_rounds(timings)


def parse_system(spec: str, work: Path, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """``NAME=FLAGS`` -> compare.py's options for that one system."""
    name, _, flags = spec.partition("=")
    if not name or not flags:
        parser.error(f"--system {spec!r}: write it NAME=FLAGS, e.g. 'student=--checkpoint S/best.pt'")
    if compare.is_peer({"system": name}):
        parser.error(f"--system {name!r}: a name starting OpenNMT-py is the baseline's")
    options = compare.build_parser()
    system = options.parse_args([*shlex.split(flags), "--work", str(work), "--name", name])
    if system.systems == options.get_default("systems"):  # no --systems given: an nmt checkpoint
        system.systems = "nmt"
    if system.systems not in ("nmt", "ctranslate2"):
        parser.error(f"--system {name!r}: one nmt or ctranslate2 system, not --systems {system.systems}")
    if system.systems == "ctranslate2" and not system.ct2_folder:
        parser.error(f"--system {name!r}: ctranslate2 needs --ct2-folder")
    if system.systems != "ctranslate2" and not system.checkpoint:
        parser.error(f"--system {name!r}: time a trained model, give --checkpoint")
    return system


def ratios(timings: list[dict], search: str = "beam 5") -> dict[str, list[float]]:
    """Each system's sentences/s in ``search`` over OpenNMT-py's beam 5 in the same round, round
    by round (greedy too is measured against OpenNMT-py's beam 5, as the speed targets are)."""
    peer = {t["round"]: t["beam 5"]["sentences_per_s"] for t in timings if compare.is_peer(t)}
    out: dict[str, list[float]] = {}
    for t in timings:
        if not compare.is_peer(t):
            out.setdefault(t["system"], []).append(t[search]["sentences_per_s"] / peer[t["round"]])
    return out


def summary(values: list[float]) -> tuple[float, float, float]:
    """Median and quartiles (statistics.quantiles' default method); under four values, whose
    quartiles that method would guess beyond them, median and range."""
    if len(values) < 4:
        return statistics.median(values), min(values), max(values)
    low, _, high = statistics.quantiles(values, n=4)
    return statistics.median(values), low, high


def print_rounds(timings: list[dict]) -> None:
    median, low, high = summary([t["beam 5"]["sentences_per_s"] for t in timings if compare.is_peer(t)])
    print(f"\nOpenNMT-py's beam 5: {median:.0f} sentences/s at the median ({low:.0f}-{high:.0f})")
    greedy = ratios(timings, "greedy")
    bleu = {t["system"]: t["beam 5"]["bleu"] for t in timings}
    print(f"{'system':<24} {'BLEU b5':>7}  {'beam 5 x (quartiles)':<20}  {'greedy x':>8}  beam 5 x, round by round")
    for name, values in ratios(timings).items():
        median, low, high = summary(values)
        each = " ".join(f"{v:.2f}" for v in values)
        print(
            f"{name[:24]:<24} {bleu[name]:>7.2f}  {median:>4.2f} ({low:.2f}-{high:.2f}){'':<5}  "
            f"{summary(greedy[name])[0]:>8.2f}  {each}"
        )
    print("x: sentences/s over OpenNMT-py's beam 5 in the same round (quartiles: the range under four rounds)")


if __name__ == "__main__":
    main()
