"""Write a generator's predictions as a histo-gan synthetic dataset (atomic, resumable)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

__all__ = ["SyntheticExport"]


class SyntheticExport(BasePredictionWriter):
    """Save ``predict`` outputs ``{"image": (B, 3, H, W) in [0, 1], "label": (B, H, W),
    "image_id": [...]}`` into a synthetic dataset at ``root``.

    Each sample keeps the exact label map it was generated from; its id is
    ``<prefix><source image id>`` and its manifest entry records the source id, the
    checkpoint and the method. Samples already in the dataset are skipped, so an interrupted
    export resumes when ``predict`` is run again.

    Args:
        root: output folder of the synthetic dataset.
        method: name stored in the dataset header and each manifest entry.
        prefix: prepended to the source ids to form sample ids.
    """

    def __init__(self, root: str | Path, method: str = "generator", prefix: str = "") -> None:
        super().__init__(write_interval="batch")
        self.root, self.method, self.prefix = Path(root), method, prefix
        self._writer = None

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from histo_gan.data.synthetic import SyntheticDatasetWriter

        if trainer.world_size > 1:
            raise RuntimeError("SyntheticExport writes from one process; predict on one device")
        metadata = {
            "method": self.method,
            "module": type(pl_module).__name__,
            "checkpoint": str(trainer.ckpt_path or ""),
        }
        self._writer = SyntheticDatasetWriter(self.root, metadata)
        self._writer.__enter__()

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ) -> None:
        assert self._writer is not None
        images = (prediction["image"].float().clamp(0, 1) * 255).round().to(torch.uint8)
        for image, label, source_id in zip(images, prediction["label"], prediction["image_id"]):
            sample_id = f"{self.prefix}{source_id}"
            if sample_id in self._writer.completed_ids:
                continue
            self._writer.add(
                sample_id,
                image.permute(1, 2, 0).cpu().numpy(),
                label.cpu().numpy().astype(np.int32),
                meta={"source_ids": [source_id], "method": self.method},
            )

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._writer is not None:
            self._writer.__exit__(None, None, None)
            self._writer = None
