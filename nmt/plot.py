"""Attention heatmaps: source tokens across, output tokens down, one PNG per sentence.

matplotlib is optional (``pip install -e ".[plot]"``); it is imported only when a plot is asked for.
"""

from __future__ import annotations

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


def plot_attention(
    attention: Tensor, *, source: list[str], output: list[str], path: str | Path, title: str = ""
) -> None:
    """attention (len(output), len(source)): row i is where output token i looked."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    if tuple(attention.shape) != (len(output), len(source)):
        raise ValueError(
            f"attention of shape {tuple(attention.shape)} for {len(output)} output and {len(source)} source tokens"
        )
    # about 0.4 inch per token, so labels stay readable without swamping short sentences
    fig, ax = plt.subplots(figsize=(2 + 0.4 * len(source), 1.5 + 0.4 * len(output)))
    try:
        image = ax.imshow(attention.float().numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(source)), source, rotation=90)
        ax.set_yticks(range(len(output)), output)
        ax.set_xlabel("source")
        ax.set_ylabel("output")
        if title:
            ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.05)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    except OSError as e:
        raise PlotError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        plt.close(fig)
