"""Pictures: attention heatmaps (source tokens across, output tokens down, one PNG per sentence)
and learning curves (loss and BLEU of one or more runs against steps and minutes).

matplotlib is optional (``pip install -e ".[plot]"``); it is imported only when a plot is asked for.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from torch import Tensor

INSTALL_HINT = 'pip install -e ".[plot]"'


class PlotError(RuntimeError):
    pass


def check_can_plot(path: str | Path) -> None:
    """Fail early, before any translating, when plots are asked for and cannot be drawn."""
    require_matplotlib()
    if not Path(path).parent.is_dir():
        raise PlotError(f"{path}: cannot write plots there, the folder {Path(path).parent} does not exist")


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotError(f"attention plots need matplotlib, which is not installed: {INSTALL_HINT}") from None


def numbered_path(path: str | Path, number: int) -> Path:
    """attention.png, 3 -> attention-3.png: the plot of input line 3."""
    path = Path(path)
    return path.with_name(f"{path.stem}-{number}{path.suffix or '.png'}")


@contextmanager
def _figure(path: str | Path, **subplots):
    """(pyplot, figure, axes) to draw on; the figure is saved to ``path`` when the block ends, and
    closed whatever happens. A file that cannot be written is a PlotError."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(**subplots)
    try:
        yield plt, fig, axes
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    except OSError as e:
        raise PlotError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        plt.close(fig)


def plot_attention(
    attention: Tensor, *, source: list[str], output: list[str], path: str | Path, title: str = ""
) -> None:
    """attention (len(output), len(source)): row i is where output token i looked."""
    if tuple(attention.shape) != (len(output), len(source)):
        raise ValueError(
            f"attention of shape {tuple(attention.shape)} for {len(output)} output and {len(source)} source tokens"
        )
    # about 0.4 inch per token, so labels stay readable without swamping short sentences
    with _figure(path, figsize=(2 + 0.4 * len(source), 1.5 + 0.4 * len(output))) as (_, fig, ax):
        image = ax.imshow(attention.float().numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(source)), source, rotation=90)
        ax.set_yticks(range(len(output)), output)
        ax.set_xlabel("source")
        ax.set_ylabel("output")
        if title:
            ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.05)


def plot_curves(runs: dict[str, list[dict]], path: str | Path) -> None:
    """Learning curves of runs given as {name: the records of its metrics.jsonl}: training and
    validation loss (one panel) and validation BLEU (another), against steps (top row) and
    against minutes of training (bottom row), every run in its own colour."""
    with _figure(path, nrows=2, ncols=2, figsize=(12, 8)) as (plt, _, axes):
        for colour, (name, records) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 10, runs.items()):
            for row, x in enumerate(("step", "minutes")):
                train = [(r[x], r["train_loss"]) for r in records if "train_loss" in r and x in r]
                valid = [(r[x], r["valid_loss"], r["valid_bleu"]) for r in records if "valid_bleu" in r and x in r]
                loss, bleu = axes[row][0], axes[row][1]
                if train:
                    loss.plot(*zip(*train), color=colour, alpha=0.6, label=f"{name} train")
                if valid:
                    xs, losses, bleus = zip(*valid)
                    loss.plot(xs, losses, color=colour, marker="o", linestyle="--", label=f"{name} valid")
                    bleu.plot(xs, bleus, color=colour, marker="o", label=name)
        for row, x in enumerate(("steps", "minutes")):
            axes[row][0].set(xlabel=x, ylabel="cross-entropy per token")
            axes[row][1].set(xlabel=x, ylabel="validation BLEU (greedy)")
        axes[0][0].legend(fontsize=8)
        axes[0][1].legend(fontsize=8)
