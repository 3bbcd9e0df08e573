"""The loss curve of a run as a picture: raw loss, its moving average, and where checkpoints were saved.

Per-step flow-matching loss is very noisy (each step draws a new noise level), so the smoothed
curve is what tells a user whether training still improves; checkpoint markers show which saved
LoRA sits where on the curve. The average spans a tenth of the run, but never fewer than 5 steps,
so a 30-step demo run shows a trend instead of the raw curve drawn twice.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from ...trainers.protocol import LOG_FILE, loss_history, read_log
from ..data.atomic import atomic_write_bytes

PLOT_FILE = "loss.png"
MIN_WINDOW = 5
MAX_WINDOW = 100


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average (the first points average what exists so far)."""
    out, total = [], 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        out.append(total / min(index + 1, window))
    return out


def window_for(steps: int) -> int:
    """Steps per moving-average point: a tenth of the run, within [MIN_WINDOW, MAX_WINDOW] and the run."""
    return max(1, min(steps, max(MIN_WINDOW, min(MAX_WINDOW, steps // 10))))


def plot_losses(log: str | Path, title: str | None = None, size: tuple[int, int] = (900, 500)) -> Image.Image:
    """Render ``train_log.jsonl`` (or the run folder holding it) as an RGB image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(log)
    path = path / LOG_FILE if path.is_dir() else path
    events = read_log(path)
    history = loss_history(events)
    saved = sorted({int(e["step"]) for e in events if e.get("event") == "checkpoint"})
    figure, axes = plt.subplots(figsize=(size[0] / 100, size[1] / 100), dpi=100)
    try:
        if history:
            steps, losses = zip(*history, strict=True)
            axes.plot(steps, losses, color="#9bb7d4", linewidth=0.8, label="loss")
            window = window_for(len(losses))
            axes.plot(
                steps,
                smooth(list(losses), window),
                color="#1f4e8c",
                linewidth=2,
                label=f"moving average ({window} steps)",
            )
            for step in saved:
                axes.axvline(step, color="#c0392b", alpha=0.25, linewidth=1)
            axes.legend(loc="upper right")
        else:
            axes.text(
                0.5, 0.5, "no training steps logged yet", ha="center", va="center", transform=axes.transAxes
            )
        axes.set_xlabel("step")
        axes.set_ylabel("flow-matching loss")
        axes.set_title(title or path.parent.name)
        axes.grid(alpha=0.3)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def write_loss_plot(run_dir: str | Path, title: str | None = None) -> Path:
    """Save the run's loss curve as ``loss.png`` beside its LoRA, so reports can link to it."""
    folder = Path(run_dir)
    buffer = io.BytesIO()
    plot_losses(folder, title=title or folder.name).save(buffer, format="PNG")
    path = folder / PLOT_FILE
    atomic_write_bytes(path, buffer.getvalue())
    return path
