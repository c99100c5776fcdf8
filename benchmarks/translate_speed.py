"""Translation speed of checkpoints on their own test split, against a baseline commit in the same run.

    python benchmarks/translate_speed.py --checkpoint checkpoints/A/best.pt [B.pt ...] --baseline 360ef51

For each checkpoint: sentences/s and target tokens/s of greedy search and beam 5 at batch 64
(the whole test split) and batch 1 (its first --batch-1-sentences), in fp32 and int8, with the
BLEU of each (and, for a checkpoint trained over every token that lists its training targets'
tokens, fp32 with the full output vocabulary too: ``fp32 full``, what the list gains); at batch
64, fp32 and int8 with the command line's worker processes too (``fp32 workers``: one per CPU
thread, nmt.workers; the RSS column stays the parent's, the largest worker's is in the JSON); the
start-up cost of translating
one line with translate.py over that of ``python -c "import torch"``; and the peak RSS of each
measurement. ``--baseline REV`` measures
the same fp32 figures with the code of commit REV (checked out into a temporary git worktree),
interleaved with today's, and prints today's as a ratio to it. Each measurement runs in a
fresh process (a worker of this script), so peak RSS is its own; timings exclude loading.

A table on stdout, and one JSON line per measurement appended to --json. Figures compare only
within one run on one machine: run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEARCHES = {"greedy": 1, "beam 5": 5}
HEADER = f"{'search':<8} {'batch':>5} {'weights':<12} {'sent/s':>8} {'tok/s':>8} {'BLEU':>6} {'RSS MB':>7}  ratio"


def measure(
    checkpoint: str,
    search: str,
    batch_size: int,
    sentences: int,
    quantize: str | None,
    full_vocab: bool = False,
    workers: bool = False,
) -> dict:
    """One measurement, in this process (``workers``: and its worker processes), with whichever
    nmt is first on sys.path."""
    import torch

    from nmt.corpora import group_by_source, load_corpus
    from nmt.metrics import score
    from nmt.translator import Translator

    # a baseline commit's from_checkpoint may know neither quantize nor output_vocab
    options = ({"quantize": quantize} if quantize else {}) | ({"output_vocab": "full"} if full_vocab else {})
    options |= {"workers": None} if workers else {}  # None: one per CPU thread, as the command line
    translator = Translator.from_checkpoint(checkpoint, **options)
    groups = group_by_source(load_corpus(translator.config.data).test)[:sentences]
    sources, references = [s for s, _ in groups], [r for _, r in groups]
    started = time.perf_counter()
    translations = translator.translate_n_best(sources, beam_size=SEARCHES[search], batch_size=batch_size)
    seconds = time.perf_counter() - started
    tokens = sum(len(t.tokens[0]) for t in translations)
    return {
        "sentences": len(sources),
        "sentences_per_s": len(sources) / seconds,
        "tokens_per_s": tokens / seconds,
        "bleu": score([t.hypotheses[0] for t in translations], references).bleu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def searchable_in_full(checkpoint: str) -> bool:
    """Whether the checkpoint lists its training targets' tokens and was trained over every token
    (``--output-vocab full``, or saved before the option), so that both searches are its own."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    return "output_ids" in state and state["config"]["model"].get("output_vocab", "full") == "full"


def in_worker(root: Path, **spec) -> dict:
    """``measure`` in a fresh process that imports nmt from ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, __file__, "--worker", json.dumps(spec)]
    done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"worker failed ({root}): {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def startup(root: Path, checkpoint: str, repeats: int = 5) -> dict:
    """Seconds to translate one line with translate.py, and to import torch, best of ``repeats``."""

    def best(command: list[str], stdin: str) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run(command, input=stdin, text=True, capture_output=True, check=True, cwd=root)
            times.append(time.perf_counter() - started)
        return min(times)

    translate = best([sys.executable, str(root / "translate.py"), "--checkpoint", checkpoint], "I am cold.\n")
    torch_only = best([sys.executable, "-c", "import torch"], "")
    return {
        "translate_one_line_s": translate,
        "import_torch_s": torch_only,
        "over_import_torch_s": translate - torch_only,
    }


def baseline_worktree(rev: str, into: Path) -> Path:
    path = into / f"nmt-{rev}"
    subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=ROOT, check=True, capture_output=True)
    for corpus in (ROOT / "corpora").iterdir():  # the corpora are not in git; the test split is read from them
        if not (path / "corpora" / corpus.name).exists():
            (path / "corpora" / corpus.name).symlink_to(corpus.resolve())
    return path


def readable_by_baseline(checkpoint: str, into: Path) -> str:
    """A copy of ``checkpoint`` without its training options: translation reads only the model,
    its config and the tokenizers, and an older commit refuses options it does not know. A model
    trained over its targets' tokens only (``output_vocab`` trained) gets the bias of every other
    output pushed to -1e9, so that a baseline which searches every token searches the same ones;
    an output layer without a bias (the Transformer's) cannot be so fenced, and a warning says so."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state["config"]["train"] = {}
    if state["config"]["model"].pop("output_vocab", "full") == "trained":
        listed = torch.tensor(state["output_ids"])
        biases = [key for key in ("decoder.out_proj.bias", "generator.bias") if key in state["model"]]
        for key in biases:
            unlisted = torch.ones_like(state["model"][key], dtype=torch.bool)
            unlisted[listed] = False
            state["model"][key] = state["model"][key].masked_fill(unlisted, -1e9)
        if not biases:
            print(f"warning: the baseline searches every token of {checkpoint}, trained over its targets' only")
    copy = into / f"for-baseline-{len(list(into.glob('for-baseline-*')))}.pt"
    torch.save(state, copy)
    return str(copy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", nargs="+", help="checkpoints to measure, one after the other")
    parser.add_argument("--baseline", metavar="REV", help="a commit whose search is the same-run baseline")
    parser.add_argument("--sentences", type=int, default=2500, help="test sentences at batch 64 (default: 2500)")
    parser.add_argument("--batch-1-sentences", type=int, default=200, help="test sentences at batch 1 (default: 200)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "translate_speed.jsonl")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(**json.loads(args.worker))))
        return
    if not args.checkpoint:
        parser.error("--checkpoint is required")

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        baseline = baseline_worktree(args.baseline, Path(tmp)) if args.baseline else None
        try:
            for checkpoint in args.checkpoint:
                checkpoint = str(Path(checkpoint).resolve())
                for_baseline = readable_by_baseline(checkpoint, Path(tmp)) if baseline else None
                print(f"\n{checkpoint} (code {commit.stdout.strip()}, baseline {args.baseline or 'none'})")
                print(HEADER)
                for search in SEARCHES:
                    for batch_size, sentences in ((64, args.sentences), (1, args.batch_1_sentences)):
                        spec = {"checkpoint": checkpoint, "search": search, "batch_size": batch_size}
                        base = None
                        if baseline:
                            readable = spec | {"checkpoint": for_baseline}
                            base = in_worker(baseline, **readable, sentences=sentences, quantize=None)
                            report(args.json, "baseline", args.baseline, spec, base, None)
                        for quantize in (None, "int8"):
                            result = in_worker(ROOT, **spec, sentences=sentences, quantize=quantize)
                            report(args.json, quantize or "fp32", commit.stdout.strip(), spec, result, base)
                        for quantize in (None, "int8") if batch_size > 1 else ():
                            result = in_worker(ROOT, **spec, sentences=sentences, quantize=quantize, workers=True)
                            weights = f"{quantize or 'fp32'} workers"
                            report(args.json, weights, commit.stdout.strip(), spec, result, base)
                        if searchable_in_full(checkpoint):
                            result = in_worker(ROOT, **spec, sentences=sentences, quantize=None, full_vocab=True)
                            report(args.json, "fp32 full", commit.stdout.strip(), spec, result, base)
                for code, root, readable in (("today", ROOT, checkpoint), ("baseline", baseline, for_baseline)):
                    if root is not None:
                        times = startup(root, readable)
                        print(
                            f"start-up ({code}): one line in {times['translate_one_line_s']:.2f} s, "
                            f"import torch {times['import_torch_s']:.2f} s: +{times['over_import_torch_s']:.2f} s"
                        )
                        append(args.json, {"checkpoint": checkpoint, "code": code, **times})
        finally:
            if baseline is not None:
                subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False)


def report(path: Path, weights: str, code: str, spec: dict, result: dict, base: dict | None) -> None:
    ratio = f"{result['sentences_per_s'] / base['sentences_per_s']:.2f}x" if base else ""
    print(
        f"{spec['search']:<8} {spec['batch_size']:>5} {weights:<12} {result['sentences_per_s']:>8.1f} "
        f"{result['tokens_per_s']:>8.0f} {result['bleu']:>6.2f} {result['peak_rss_mb']:>7.0f}  {ratio}",
        flush=True,
    )
    append(path, {**spec, "weights": weights, "code": code, **result})


def append(path: Path, record: dict) -> None:
    record["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
