"""Train several nmt configurations under one budget, one after the other, and print one table.

    python benchmarks/sweep.py recipes/sweep-rnn-12min.toml

The file lists runs as [[run]] tables with a ``name`` and the train_nmt.py ``flags`` (a string);
an optional top-level ``minutes`` sets the budget (default 12). Each run is trained, translated
(greedy and beam 5, ``beam_flags`` adds translate.py flags) and scored on the test split by
benchmarks/peers/compare.py's nmt runner, and appended to its results.jsonl, so a sweep and an
OpenNMT-py run of the same session share one table. Runs compare only within one session on one
machine: run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import compare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path, help="a TOML file of [[run]] tables (name, flags, beam_flags)")
    parser.add_argument("--work", type=Path, default=compare.HERE / "work", help="as compare.py's --work")
    parser.add_argument("--only", nargs="*", help="run only the runs of these names")
    parser.add_argument("--nmt-root", type=Path, default=compare.ROOT, help="as compare.py's --nmt-root")
    args = parser.parse_args()
    sweep = tomllib.loads(args.sweep.read_text(encoding="utf-8"))
    work = args.work.resolve()
    test = compare.prepare_data(work)
    for run in sweep["run"]:
        if args.only and run["name"] not in args.only:
            continue
        options = argparse.Namespace(
            name=run["name"],
            nmt_args=run.get("flags", ""),
            nmt_translate_args=run.get("beam_flags", ""),
            minutes=sweep.get("minutes", 12.0),
            nmt_root=args.nmt_root,
        )
        compare.record(work, compare.run_nmt(work, options, test))
    compare.print_table(work)


if __name__ == "__main__":
    main()
