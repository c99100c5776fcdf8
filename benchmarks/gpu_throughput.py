"""Training throughput and model FLOP utilisation on one GPU: fp32 (TF32), bf16, bf16 + compile.

    python benchmarks/gpu_throughput.py [--config recipes/transformer-gpu.toml] [--steps 500]
                                        [--batch-tokens 16000 64000]

Each row is one run of the real command, ``train_nmt.py --config CONFIG --device cuda --max-steps
STEPS`` with the row's --precision (and --compile), at each --batch-tokens given (the config's
own when none is): bigger batches give the GPU more work per step for the same operations the
host dispatches, which shows whether the host or the GPU sets the pace. Its target tokens/s come
from metrics.jsonl, leaving out the first two --log-every windows (CUDA start-up; torch.compile's first compilations,
which the wall-time column includes); the last window's rate shows whether the run had settled.
FLOPs per target token are counted by ``torch.utils.flop_counter`` on the run's own first batches
(forward, loss and backward of its checkpoint, padded as the GPU computes them), so MFU is the
achieved FLOP/s over the GPU's dense bf16 peak, --peak-tflops (989: NVIDIA's datasheet for the
H100 and H200 SXM). fp32 rows are measured against the same bf16 peak: they show what bf16 buys.

A table on stdout, one JSON line per row appended to --json. Figures compare only within one run
on one machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from nmt import corpora
from nmt.checkpoint import load_checkpoint, restore_model
from nmt.data import BatchedData, encode_pairs
from nmt.loss import sequence_loss

ROOT = Path(__file__).resolve().parents[1]

ROWS = {"fp32": ["--precision", "fp32"], "bf16": ["--precision", "bf16"]}
ROWS["bf16 + compile"] = [*ROWS["bf16"], "--compile"]


def train(config: str, device: str, flags: list[str], steps: int, log_every: int, run_dir: Path) -> dict:
    """One run of train_nmt.py; its settled tokens/s."""
    command = [sys.executable, str(ROOT / "train_nmt.py"), "--config", config, "--device", device]
    command += ["--max-steps", str(steps), "--log-every", str(log_every), "--valid-every", str(10 * steps)]
    command += ["--valid-bleu-sentences", "1", "--run-dir", str(run_dir), *flags]
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    seconds = time.monotonic() - started
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tokens_per_s"] for r in lines if "tokens_per_s" in r][2:]
    return {"tokens_per_s": sum(rates) / len(rates), "last_window_tokens_per_s": rates[-1], "wall_s": seconds}


def flops_per_target_token(checkpoint: Path, device: str, batches: int) -> float:
    """Model FLOPs of one training step per real target token, over the run's first batches."""
    model, src_tok, trg_tok, config = restore_model(load_checkpoint(checkpoint), checkpoint, device)
    splits = corpora.load_corpus(config.data, ROOT / "corpora")
    data = BatchedData(
        encode_pairs(splits.train, src_tok, trg_tok, max_len=config.data.max_len),
        batch_tokens=config.train.batch_tokens,
        batch_size=config.train.batch_size,
        seed=config.train.seed,
    )
    counter, tokens = FlopCounterMode(display=False), 0
    with counter:
        for update in itertools.islice(data.batches(0), batches):
            batch = update.pieces[0].to(device)
            objective, _ = sequence_loss(model(batch.src, batch.src_len, batch.trg_in), batch.trg_out)
            objective.backward()
            tokens += batch.n_tokens
    return counter.get_total_flops() / tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="recipes/transformer-gpu.toml")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:1; cpu only to try the script")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--batch-tokens", type=int, nargs="+", default=[0], help="0: the config's")
    parser.add_argument("--flop-batches", type=int, default=30)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "gpu_throughput.jsonl")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_throughput.py: no CUDA GPU here")

    gpu = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else platform.processor()
    print(f"{gpu}, torch {torch.__version__}, {args.config}, {args.steps} steps per row")
    print(f"{'row':<16}{'batch tokens':>13}{'tokens/s':>10}{'last window':>13}{'TFLOP/s':>9}{'MFU':>7}{'wall s':>8}")
    flops = {}
    with tempfile.TemporaryDirectory() as tmp:
        for batch_tokens, name in itertools.product(args.batch_tokens, args.rows):
            run_dir = Path(tmp) / f"{name.replace(' ', '')}-{batch_tokens}"
            flags = [*ROWS[name], *(["--batch-tokens", str(batch_tokens)] if batch_tokens else [])]
            row = train(args.config, args.device, flags, args.steps, args.log_every, run_dir)
            if batch_tokens not in flops:  # the same batches and model in every row of this batch size
                flops[batch_tokens] = flops_per_target_token(run_dir / "last.pt", args.device, args.flop_batches)
            per_token = flops[batch_tokens]
            tflops = row["tokens_per_s"] * per_token / 1e12
            row |= {"row": name, "batch_tokens": batch_tokens or "config", "flops_per_target_token": per_token}
            row |= {"tflops": tflops, "mfu": tflops / args.peak_tflops}
            print(
                f"{name:<16}{batch_tokens or 'config':>13}{row['tokens_per_s']:>10,.0f}"
                f"{row['last_window_tokens_per_s']:>13,.0f}{tflops:>9.1f}{row['mfu']:>7.1%}{row['wall_s']:>8.0f}",
                flush=True,
            )
            row |= {"gpu": gpu, "torch": torch.__version__, "config": args.config, "steps": args.steps}
            with args.json.open("a") as f:
                f.write(json.dumps(row | {"python": platform.python_version()}) + "\n")
    for batch_tokens, per_token in flops.items():
        print(f"model FLOPs per target token at {batch_tokens or 'config'} batch tokens: {per_token / 1e6:,.0f}M")


if __name__ == "__main__":
    main()
