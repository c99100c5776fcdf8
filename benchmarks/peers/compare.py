"""nmt against OpenNMT-py on one machine, back to back: same data, same pieces, same wall clock.

    bash benchmarks/peers/setup_opennmt.sh          # once: OpenNMT-py 3.5.1 in its own venv
    python benchmarks/peers/compare.py --minutes 12  # OpenNMT-py, then nmt, then the table

Both systems train on the project's own train split (the default data settings of
train_nmt.py), cut into the pieces of the joint SentencePiece model nmt trains on it (OpenNMT-py
reads them as space-separated tokens), for the same minutes of wall clock: OpenNMT-py from the
launch of onmt_train (it has no graceful stop: it gets SIGTERM and its last periodic checkpoint
is used), nmt through ``--time-budget``, which counts from the start of training and includes its
validations. Both then translate the test split (one line per source sentence) with the whole
command timed, greedy and beam 5, and are scored with sacrebleu against every reference, overall
and by source length. Every result is appended to WORK/results.jsonl, so ``--systems`` can add
runs (say, another nmt recipe) to the same table later in the same session; a figure only
compares with figures taken on the same machine in the same session.

A model trained already joins the table without training (``--systems nmt --checkpoint
checkpoints/X/best.pt --name X``, with ``--quantize int8`` for nmt's int8 search), and so does
its CTranslate2 export (``--systems ctranslate2 --ct2-folder F [--ct2-compute-type int8]
--checkpoint checkpoints/X/best.pt --name ...``), timed through ``ct2_translate.py``. When the
machine was busy while OpenNMT-py trained (``--train-only``), ``--retime`` times its searches
later. To train OpenNMT-py beside another training, give each one thread
(``OMP_NUM_THREADS=1 ... --train-only`` and ``nmt train --threads 1``): torch's default of one
thread per core put four busy threads on two cores and slowed both about tenfold. An OpenNMT-py
trained so makes fewer updates, and its weaker model writes longer translations, which take
longer: a baseline for speed ratios trains alone (docs/experiments.rst, "An OpenNMT-py trained
alone"). Speed ratios that hold up on a shared machine come from many rounds of timings taken in
turns: ``benchmarks/peers/rounds.py``.

Not part of CI: a run takes twice the budget and a few minutes more.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from nmt.config import DataConfig  # noqa: E402
from nmt.corpora import group_by_source, load_corpus  # noqa: E402
from nmt.metrics import score  # noqa: E402
from nmt.tokenizers import build_tokenizers  # noqa: E402

HERE = Path(__file__).resolve().parent
OPENNMT_BEAM = ["-length_penalty", "wu", "-alpha", "1.0"]  # as measured in the quality issue
SEARCHES = {"greedy": 1, "beam 5": 5}
OPENNMT_ENV = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}  # its checkpoints hold an argparse Namespace


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    work = args.work.resolve()
    if not args.table_only:
        test = prepare_data(work)
        for system in args.systems.split(","):
            if system == "opennmt" and args.train_only:
                train_opennmt(work, args.venv, args.minutes, work / "runs" / "opennmt", OPENNMT_ENV)
            elif system == "opennmt":
                record(work, run_opennmt(work, args.venv, args.minutes, test, retime=args.retime))
            elif system == "nmt":
                record(work, run_nmt(work, args, test))
            elif system == "ctranslate2" and args.ct2_folder:
                record(work, run_ctranslate2(work, args, test))
            else:
                parser.error(f"unknown system {system!r}: opennmt, nmt or ctranslate2 (with --ct2-folder)")
    print_table(work)
    if args.chart:
        draw_chart(work, args.chart)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=12.0, help="training budget of each system (default: 12)")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="data, runs and results.jsonl go here")
    parser.add_argument("--venv", type=Path, default=HERE / ".venv-opennmt", help="OpenNMT-py's virtual environment")
    parser.add_argument("--systems", default="opennmt,nmt", help="which to run, in order (default: opennmt,nmt)")
    parser.add_argument("--nmt-args", default="", help="extra train_nmt.py flags for the nmt run, e.g. '--lr 1e-3'")
    parser.add_argument("--nmt-translate-args", default="", help="extra translate.py flags for nmt's beam search")
    parser.add_argument("--name", default="", help="a label for this nmt run in the table (default: its flags)")
    parser.add_argument(
        "--nmt-root",
        type=Path,
        default=ROOT,
        help="the nmt checkout whose train_nmt.py and translate.py run, e.g. a worktree of an earlier "
        "commit as a same-session baseline (default: this one)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="time this nmt checkpoint, trained already, instead of training one (its updates and tok/s come "
        "from the metrics.jsonl beside it); give --name too",
    )
    parser.add_argument(
        "--retime",
        action="store_true",
        help="opennmt: time the searches of the model trained before in WORK instead of training again (when "
        "the machine was busy during the first timing)",
    )
    parser.add_argument(
        "--train-only", action="store_true", help="opennmt: train and stop; time it later with --retime"
    )
    parser.add_argument("--quantize", choices=["int8"], help="nmt's translate.py --quantize, both searches")
    parser.add_argument(
        "--ct2-folder", type=Path, help="the ctranslate2 system: a folder of nmt export --format ctranslate2"
    )
    parser.add_argument("--ct2-compute-type", default="default", help="CTranslate2's compute type, e.g. int8")
    parser.add_argument(
        "--chart", type=Path, help="also draw BLEU against sentences/s, every system's greedy and beam 5 a point"
    )
    parser.add_argument("--table-only", action="store_true", help="print the table of results.jsonl and stop")
    return parser


def prepare_data(work: Path) -> dict:
    """The train / valid pieces for OpenNMT-py, and the test sources and references for both."""
    data = work / "data"
    done = data / "test.json"
    if done.exists():
        return json.loads(done.read_text())
    config = DataConfig(corpus="eng-fra")
    splits = load_corpus(config, ROOT / "corpora")
    tokenizer, _ = build_tokenizers(splits.train, config)  # the joint model train_nmt.py builds by default
    (data / "sp").mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid"):
        pairs = getattr(splits, split)
        for side, lang in ((0, config.src), (1, config.trg)):
            lines = (" ".join(tokenizer.tokens(pair[side])) for pair in pairs)
            (data / "sp" / f"{split}.{lang}").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    groups = group_by_source(splits.test)
    sources = [source for source, _ in groups]
    (data / "test.src").write_text("".join(s + "\n" for s in sources), encoding="utf-8")
    (data / "sp" / "test.src").write_text("".join(" ".join(tokenizer.tokens(s)) + "\n" for s in sources), "utf-8")
    (data / "spm.model").write_bytes(tokenizer.model)
    test = {"sources": sources, "references": [refs for _, refs in groups]}
    done.write_text(json.dumps(test, ensure_ascii=False), encoding="utf-8")
    return test


def run_opennmt(work: Path, venv: Path, minutes: float, test: dict, *, retime: bool = False) -> dict:
    if not (venv / "bin" / "onmt_train").exists():
        sys.exit(f"no OpenNMT-py in {venv}: run bash benchmarks/peers/setup_opennmt.sh first")
    run = work / "runs" / "opennmt"
    env = OPENNMT_ENV
    if not retime:
        train_opennmt(work, venv, minutes, run, env)
    text = (run / "train.log").read_text()
    steps = [int(s) for s in re.findall(r"Step (\d+)/", text)]
    trg_tok_s = [float(trg) for _, trg in re.findall(r"(\d+)/\s*(\d+) tok/s", text)]
    checkpoints = sorted(run.glob("rnn/model_step_*.pt"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    if not checkpoints:
        sys.exit(f"OpenNMT-py saved no checkpoint; see {run / 'train.log'}")
    result = {
        "system": "OpenNMT-py 3.5.1",
        "updates": max(steps, default=0),
        "checkpoint_step": int(checkpoints[-1].stem.rsplit("_", 1)[1]),
        "trg_tokens_per_s": sum(trg_tok_s) / max(1, len(trg_tok_s)),
    }
    for name, beam in SEARCHES.items():
        output = run / f"test.{beam}.sp"
        files = ["-model", checkpoints[-1], "-src", work / "data/sp/test.src", "-output", output]
        options = f"-batch_size 64 -batch_type sents -beam_size {beam} -max_length 100".split()
        command = [venv / "bin" / "onmt_translate", *files, *options, *(OPENNMT_BEAM if beam > 1 else [])]
        seconds = timed(command, env)
        hypotheses = detokenize(work, output.read_text(encoding="utf-8").splitlines())
        result[name] = scores(hypotheses, test) | {"sentences_per_s": len(hypotheses) / seconds}
    return result


def train_opennmt(work: Path, venv: Path, minutes: float, run: Path, env: dict) -> None:
    """OpenNMT-py trained for ``minutes`` of wall clock into ``run`` (its log: run/train.log)."""
    if run.exists():
        subprocess.run(["rm", "-rf", str(run)], check=True)
    (run / "rnn").mkdir(parents=True)
    config = run / "opennmt-rnn.yaml"
    config.write_text((HERE / "opennmt-rnn.yaml").read_text().replace("@WORK@", str(work)))
    subprocess.run(
        [venv / "bin" / "onmt_build_vocab", "-config", config, "-n_sample", "-1"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = run / "train.log"
    print(f"OpenNMT-py: training for {minutes} minutes, log in {log}", flush=True)
    with open(log, "w") as out:
        process = subprocess.Popen([venv / "bin" / "onmt_train", "-config", config], stdout=out, stderr=out, env=env)
        try:
            process.wait(timeout=minutes * 60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            process.wait()


def run_nmt(work: Path, args: argparse.Namespace, test: dict) -> dict:
    name = args.name or ("nmt " + args.nmt_args).strip()
    run = work / "runs" / re.sub(r"[^\w.-]+", "_", name)
    if run.exists():
        subprocess.run(["rm", "-rf", str(run)], check=True)
    nmt_root = args.nmt_root.resolve()
    checkpoint = args.checkpoint.resolve() if args.checkpoint else run / "best.pt"
    if args.checkpoint:
        run.mkdir(parents=True)
    else:
        budget = f"--corpus eng-fra --time-budget {args.minutes}".split()
        command = [sys.executable, nmt_root / "train_nmt.py", *budget, "--run-dir", run, *shlex.split(args.nmt_args)]
        print(f"nmt: {shlex.join(map(str, command))}", flush=True)
        with open(work / f"{run.name}.log", "w") as out:
            subprocess.run(command, check=True, stdout=out, stderr=out, cwd=nmt_root)
    lines = [json.loads(line) for line in (checkpoint.parent / "metrics.jsonl").read_text().splitlines()]
    train_lines = [line for line in lines if "tokens_per_s" in line]
    result = {
        "system": name,
        "nmt_commit": git_commit(nmt_root),
        "updates": max(line["step"] for line in lines if "step" in line),
        "trg_tokens_per_s": sum(line["tokens_per_s"] for line in train_lines) / max(1, len(train_lines)),
    }
    for search, beam in SEARCHES.items():
        output = run / f"test.{beam}.out"
        files = ["--checkpoint", checkpoint, "--input", work / "data/test.src", "--output", output]
        options = [
            "--beam",
            str(beam),
            "--batch-size",
            "64",
            *(["--quantize", args.quantize] if args.quantize else []),
            *(shlex.split(args.nmt_translate_args) if beam > 1 else []),
        ]
        seconds = timed([sys.executable, nmt_root / "translate.py", *files, *options], dict(os.environ))
        hypotheses = output.read_text(encoding="utf-8").splitlines()
        result[search] = scores(hypotheses, test) | {"sentences_per_s": len(hypotheses) / seconds}
    return result


def run_ctranslate2(work: Path, args: argparse.Namespace, test: dict) -> dict:
    """A CTranslate2 folder's searches, timed as a whole command (benchmarks/peers/ct2_translate.py);
    training figures are those of the checkpoint it was exported from, when --checkpoint says which."""
    name = args.name or f"ctranslate2 {args.ct2_compute_type} {args.ct2_folder.name}"
    run = work / "runs" / re.sub(r"[^\w.-]+", "_", name)
    run.mkdir(parents=True, exist_ok=True)
    lines = []
    if args.checkpoint:
        lines = [json.loads(line) for line in (args.checkpoint.parent / "metrics.jsonl").read_text().splitlines()]
    train_lines = [line for line in lines if "tokens_per_s" in line]
    result = {
        "system": name,
        "updates": max((line["step"] for line in lines if "step" in line), default=0),
        "trg_tokens_per_s": sum(line["tokens_per_s"] for line in train_lines) / max(1, len(train_lines)),
    }
    for search, beam in SEARCHES.items():
        output = run / f"test.{beam}.out"
        command = [sys.executable, HERE / "ct2_translate.py", args.ct2_folder, work / "data/test.src", output]
        seconds = timed([*command, "--beam", str(beam), "--compute-type", args.ct2_compute_type], dict(os.environ))
        hypotheses = output.read_text(encoding="utf-8").splitlines()
        result[search] = scores(hypotheses, test) | {"sentences_per_s": len(hypotheses) / seconds}
    return result


def timed(command: list, env: dict) -> float:
    """Seconds the command takes, run as an installed program runs: with Python's bytecode caches.
    Without them (PYTHONDONTWRITEBYTECODE set, or the caches deleted) each start compiles every
    module from source, torch's included, and the timing measures that compiling (OpenNMT-py's beam
    5 took a fifth to a half longer; docs/experiments.rst). The first run writes what is missing."""
    env = {name: value for name, value in env.items() if name != "PYTHONDONTWRITEBYTECODE"}
    started = time.monotonic()
    subprocess.run([str(c) for c in command], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def detokenize(work: Path, lines: list[str]) -> list[str]:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=(work / "data" / "spm.model").read_bytes())
    return [processor.decode_pieces(line.split()) for line in lines]


def scores(hypotheses: list[str], test: dict) -> dict:
    result = score(hypotheses, test["references"], sources=test["sources"])
    groups = {f"bleu {g.name}": g.bleu for g in result.by_length}
    return {
        "bleu": result.bleu,
        "chrf": result.chrf,
        **groups,
        "sentences_long": next((g.sentences for g in result.by_length if "+" in g.name), 0),
    }


def record(work: Path, result: dict, *, echo: bool = True) -> None:
    result["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    result["commit"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    with open(work / "results.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(result) + "\n")
    if echo:
        print(json.dumps(result), flush=True)


def is_peer(result: dict) -> bool:
    """Whether a result is OpenNMT-py's, the baseline every ratio divides by."""
    return result["system"].startswith("OpenNMT-py")


def git_commit(root: Path) -> str:
    """The commit checked out at ``root``, with "+changes" when its tracked files differ from it."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=root).stdout
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=root).returncode != 0
    return commit.strip() + ("+changes" if dirty else "")


def print_table(work: Path) -> None:
    if not (work / "results.jsonl").exists():
        return  # nothing timed yet (--train-only)
    results = [json.loads(line) for line in (work / "results.jsonl").read_text().splitlines()]
    peer = next((r for r in reversed(results) if is_peer(r)), None)
    header = (
        f"{'system':<44} {'updates':>7} {'tok/s':>6}  {'BLEU greedy':>11} {'BLEU beam5':>10} {'long beam5':>10} "
        f"{'chrF beam5':>10}  {'sent/s greedy':>13} {'sent/s beam5':>12}"
    )
    print(header)
    for r in results:
        g, b = r["greedy"], r["beam 5"]
        long = next((v for k, v in b.items() if k.startswith("bleu 12")), float("nan"))
        print(
            f"{r['system'][:44]:<44} {r['updates']:>7} {r['trg_tokens_per_s']:>6.0f}  {g['bleu']:>11.2f} "
            f"{b['bleu']:>10.2f} {long:>10.2f} {b['chrf']:>10.2f}  {g['sentences_per_s']:>13.1f} "
            f"{b['sentences_per_s']:>12.1f}"
        )
        if peer is not None and r is not peer:
            peer_long = next((v for k, v in peer["beam 5"].items() if k.startswith("bleu 12")), float("nan"))
            print(
                f"{'  against OpenNMT-py':<44} {r['updates'] / peer['updates']:>6.2f}x "
                f"{r['trg_tokens_per_s'] / peer['trg_tokens_per_s']:>5.2f}x  "
                f"{g['bleu'] - peer['greedy']['bleu']:>+11.2f} "
                f"{b['bleu'] - peer['beam 5']['bleu']:>+10.2f} {long - peer_long:>+10.2f} "
                f"{b['chrf'] - peer['beam 5']['chrf']:>+10.2f}  "
                f"{g['sentences_per_s'] / peer['greedy']['sentences_per_s']:>12.2f}x "
                f"{b['sentences_per_s'] / peer['beam 5']['sentences_per_s']:>11.2f}x"
            )


def draw_chart(work: Path, path: Path) -> None:
    """BLEU against whole-command sentences/s: a colour per system (its last row when timed twice),
    a square for beam 5 and a circle for greedy; dotted lines at 3 and 5 times OpenNMT-py's beam 5."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    rows = [json.loads(line) for line in (work / "results.jsonl").read_text().splitlines()]
    results = list({r["system"]: r for r in rows}.values())  # the last row of each system, in first-seen order
    fig, ax = plt.subplots(figsize=(10, 5.5))
    palette = plt.get_cmap("tab10" if len(results) <= 10 else "tab20")  # no two systems share a colour up to 20
    for i, r in enumerate(results):
        colour = palette(i % palette.N)
        points = [(r[search]["sentences_per_s"], r[search]["bleu"]) for search in SEARCHES]
        ax.plot(*zip(*points), color=colour, linewidth=0.8, alpha=0.5)
        for (x, y), marker in zip(points, ("o", "s")):
            ax.scatter(x, y, color=colour, marker=marker, s=40)
        ax.scatter([], [], color=colour, marker="s", label=r["system"])
    peer = next((r for r in results if is_peer(r)), None)
    if peer is not None:
        for times in (3, 5):
            ax.axvline(times * peer["beam 5"]["sentences_per_s"], color="grey", linestyle=":", linewidth=1)
            ax.annotate(
                f"{times}x OpenNMT-py beam 5",
                (times * peer["beam 5"]["sentences_per_s"], ax.get_ylim()[0]),
                rotation=90,
                fontsize=7,
                color="grey",
                va="bottom",
                ha="right",
            )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("sentences/s, whole command, test split (log scale)")
    ax.set_ylabel("BLEU, test split, every reference")
    ax.set_title("square: beam 5, circle: greedy", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"chart: {path}")


if __name__ == "__main__":
    main()
