"""Translate a file with a CTranslate2 folder of nmt (nmt export --format ctranslate2), for
compare.py to time as a whole command, as it times translate.py and onmt_translate.

    python benchmarks/peers/ct2_translate.py FOLDER INPUT OUTPUT --beam 5 --compute-type int8
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from nmt.ct2 import Ct2Translator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--compute-type", default="default", help="CTranslate2's: default (the folder's), int8, float32"
    )
    parser.add_argument("--threads", type=int, default=0, help="CTranslate2's intra_threads (0: its own default)")
    args = parser.parse_args()
    translator = Ct2Translator(args.folder, compute_type=args.compute_type, threads=args.threads)
    lines = args.input.read_text(encoding="utf-8").splitlines()
    outputs = translator.translate(lines, beam_size=args.beam, max_batch_size=args.batch_size)
    args.output.write_text("".join(line + "\n" for line in outputs), encoding="utf-8")


if __name__ == "__main__":
    main()
