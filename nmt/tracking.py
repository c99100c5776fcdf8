"""Where training metrics go: metrics.jsonl always; TensorBoard and Weights & Biases when asked.

A sink takes the records MetricsLog makes (one dict per training window or validation, with
its step, epoch and minutes), the few example translations of each validation, and is closed
at the end. TensorBoard and W&B are optional extras (``pip install -e ".[tensorboard]"``,
``".[wandb]"``), imported only when their sink is made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol


class Sink(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...

    def examples(self, step: int, pairs: list[tuple[str, str]]) -> None: ...

    def close(self) -> None: ...


class JsonLines:
    """metrics.jsonl: one JSON object a line, appended and closed at once (a killed run loses nothing)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def examples(self, step: int, pairs: list[tuple[str, str]]) -> None:
        pass  # the log shows them; metrics.jsonl stays numbers only

    def close(self) -> None:
        pass


class TensorBoard:
    """Scalars under RUN_DIR/tensorboard (``tensorboard --logdir checkpoints``), the config and examples as text."""

    def __init__(self, run_dir: Path, config: dict[str, Any]):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        self.writer.add_text("config", f"```\n{json.dumps(config, indent=2)}\n```")

    def write(self, record: dict[str, Any]) -> None:
        for name, value in record.items():
            if name not in ("step", "epoch"):
                self.writer.add_scalar(name, value, record["step"])
        self.writer.flush()

    def examples(self, step: int, pairs: list[tuple[str, str]]) -> None:
        table = "\n".join(f"| {source} | {translation} |" for source, translation in pairs)
        self.writer.add_text("examples", f"| source | translation |\n|---|---|\n{table}", step)

    def close(self) -> None:
        self.writer.close()


class WeightsAndBiases:
    """A W&B run named after the run folder, its files under RUN_DIR/wandb; WANDB_MODE=offline
    keeps everything on disk (``wandb sync`` uploads it later)."""

    def __init__(self, run_dir: Path, config: dict[str, Any], project: str):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project=project, name=Path(run_dir).name, dir=str(run_dir), config=config)

    def write(self, record: dict[str, Any]) -> None:
        self.run.log({name: value for name, value in record.items() if name != "step"}, step=record["step"])

    def examples(self, step: int, pairs: list[tuple[str, str]]) -> None:
        table = self.wandb.Table(columns=["source", "translation"], data=[list(pair) for pair in pairs])
        self.run.log({"examples": table}, step=step)

    def close(self) -> None:
        self.run.finish()
