"""The loss curve of a run as a picture: raw loss, its moving average, and where checkpoints were saved.

Per-step flow-matching loss is very noisy (each step draws a new noise level), so the smoothed
curve is what tells a user whether training still improves; checkpoint markers show which saved
LoRA sits where on the curve.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from ...trainers.protocol import LOG_FILE, loss_history, read_log


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average (the first points average what exists so far)."""
    out, total = [], 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        out.append(total / min(index + 1, window))
    return out


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
            axes.plot(
                steps,
                smooth(list(losses), max(1, len(losses) // 20)),
                color="#1f4e8c",
                linewidth=2,
                label="moving average",
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
