"""Curves of the validation metrics over epochs, drawn as a PNG next to the run's logs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import lightning as L

__all__ = ["MetricPlot"]


class MetricPlot(L.Callback):
    """After each validation epoch, record ``metrics`` and redraw ``<log_dir>/metrics.png``.

    Args:
        metrics: logged names to plot, one panel each (missing names are skipped).
    """

    def __init__(
        self,
        metrics: tuple[str, ...] = ("val/dice", "val/aji", "val/pq", "val/hausdorff", "train/loss"),
    ) -> None:
        self.metrics = tuple(metrics)
        self.history: dict[str, list[tuple[int, float]]] = {m: [] for m in self.metrics}
        self.path: Path | None = None

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        log_dir = trainer.log_dir  # a collective under DDP: every rank asks
        if not trainer.is_global_zero:
            return
        for name in self.metrics:
            value = trainer.callback_metrics.get(name)
            if value is not None:
                self.history[name].append((trainer.current_epoch, float(value)))
        self._draw(Path(log_dir or trainer.default_root_dir))

    def _draw(self, out_dir: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        series = {name: points for name, points in self.history.items() if points}
        if not series:
            return
        figure, axes = plt.subplots(1, len(series), figsize=(3.2 * len(series), 2.8), squeeze=False)
        for axis, (name, points) in zip(axes[0], series.items()):
            epochs, values = zip(*points)
            axis.plot(epochs, values, marker="o", markersize=3)
            axis.set_title(name, fontsize=9)
            axis.set_xlabel("epoch", fontsize=8)
            axis.tick_params(labelsize=7)
            axis.grid(alpha=0.3)
        figure.tight_layout()
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, suffix=".png", delete=False) as tmp:
            figure.savefig(tmp.name, dpi=110)
        plt.close(figure)
        self.path = out_dir / "metrics.png"
        os.replace(tmp.name, self.path)
