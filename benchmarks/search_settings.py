"""One checkpoint, several search settings: BLEU and brevity penalty overall and on long sentences.

    python benchmarks/search_settings.py CHECKPOINT "--beam 1" "--beam 5 --length-penalty 1.5"

Each setting is a string of translate.py flags. The test split is the one benchmarks/peers/compare.py
prepares in its --work folder (its data/test.json: sources with all their references). The model
is the same in every row, so the rows compare on any machine, unlike time-budget runs: they tell
whether a model's weakness on long sentences is the search's (short outputs: a brevity penalty
below 1 that a longer length penalty lifts along with BLEU) or the model's own.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import sacrebleu

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import compare  # noqa: E402

from nmt.metrics import LONG_SENTENCE, reference_streams  # noqa: E402


def part_bleu(indices: list[int], hypotheses: list[str], references: list[list[str]]) -> sacrebleu.BLEUScore:
    return sacrebleu.corpus_bleu([hypotheses[i] for i in indices], reference_streams([references[i] for i in indices]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("settings", nargs="+", help='translate.py flags, one string a setting, e.g. "--beam 5"')
    parser.add_argument("--work", type=Path, default=compare.HERE / "work", help="as compare.py's --work")
    args = parser.parse_args()
    work = args.work.resolve()
    test = compare.prepare_data(work)
    sources, references = test["sources"], test["references"]
    parts = {
        "all": list(range(len(sources))),
        f"{LONG_SENTENCE}+ words": [i for i, s in enumerate(sources) if len(s.split()) >= LONG_SENTENCE],
    }
    print(f"{'setting':36}" + "".join(f"  {f'{name} ({len(ix)})':>24} BLEU    BP  ratio" for name, ix in parts.items()))
    with tempfile.TemporaryDirectory() as tmp:
        for setting in args.settings:
            output = Path(tmp) / "out.txt"
            command = [sys.executable, str(compare.ROOT / "translate.py"), "--checkpoint", str(args.checkpoint)]
            command += ["--input", str(work / "data" / "test.src"), "--output", str(output), *setting.split()]
            subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
            hypotheses = output.read_text(encoding="utf-8").splitlines()
            row = f"{setting:36}"
            for indices in parts.values():
                result = part_bleu(indices, hypotheses, references)
                row += f"  {'':>24} {result.score:5.2f} {result.bp:5.3f} {result.sys_len / result.ref_len:6.3f}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
