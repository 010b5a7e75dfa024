"""Sample grids: pictures of what a generator makes, saved with the run and sent to the loggers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import lightning as L
import torch
from torchvision.utils import make_grid, save_image

__all__ = ["SampleGrid"]


class SampleGrid(L.Callback):
    """Every ``every_n_epochs`` epochs, save a grid of ``pl_module.sample_images(batch)``.

    The module returns ``{name: (B, 3, H, W) float in [0, 1]}`` (``sample_images`` of the
    method contract, :class:`histo_gan.modules.template.Method`); each name becomes one row
    of the grid (``num_samples`` columns), in order. The grid is written atomically to
    ``<log_dir>/samples/epoch_XXXX.png`` and logged to TensorBoard or W&B when present.

    Args:
        every_n_epochs: how often to draw.
        num_samples: columns of the grid (taken from the first training batch of the epoch).
    """

    def __init__(self, every_n_epochs: int = 1, num_samples: int = 4) -> None:
        self.every_n_epochs, self.num_samples = every_n_epochs, num_samples
        self._batch: dict | None = None
        self.last_path: Path | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self._batch = {
                k: v[: self.num_samples] if isinstance(v, torch.Tensor | list) else v
                for k, v in batch.items()
            }

    @torch.no_grad()
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch
        if self._batch is None or (epoch + 1) % self.every_n_epochs:
            return
        log_dir = trainer.log_dir  # a collective under DDP: every rank asks
        if not trainer.is_global_zero:
            return
        was_training = pl_module.training
        pl_module.eval()
        rows = pl_module.sample_images(self._batch)
        pl_module.train(was_training)
        images = torch.cat([rows[name].float().cpu().clamp(0, 1) for name in rows])
        grid = make_grid(images, nrow=len(next(iter(rows.values()))), padding=2, pad_value=1.0)
        out_dir = Path(log_dir or trainer.default_root_dir) / "samples"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"epoch_{epoch:04d}.png"
        with tempfile.NamedTemporaryFile(dir=out_dir, suffix=".png", delete=False) as tmp:
            save_image(grid, tmp.name)
        os.replace(tmp.name, path)
        self.last_path = path
        caption = " / ".join(rows)
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_image"):  # TensorBoard
                experiment.add_image("samples", grid, global_step=epoch)
            elif hasattr(logger, "log_image"):  # W&B
                logger.log_image(
                    key="samples", images=[grid], caption=[caption], step=trainer.global_step
                )
