"""Write a generator's predictions as a histo-gan synthetic dataset (atomic, resumable)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from histo_gan.types import SynthesisPrediction

__all__ = ["SyntheticExport"]


class SyntheticExport(BasePredictionWriter):
    """Save :class:`~histo_gan.types.SynthesisPrediction` payloads (from any
    :class:`~histo_gan.types.Synthesizer` through the ``SynthesizeImages`` predictor) into a
    synthetic dataset at ``root``.

    Each sample keeps the exact label map it was generated from and its importance weight
    (``weight``, 1 when the synthesizer gives none; padding items are skipped); its id is
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
        self,
        trainer,
        pl_module,
        prediction: SynthesisPrediction,
        batch_indices,
        batch,
        batch_idx,
        dataloader_idx=0,
    ) -> None:
        assert self._writer is not None
        if "image" not in prediction or "label" not in prediction:
            raise ValueError(
                f"SyntheticExport needs synthesis predictions, got keys {sorted(prediction)}: "
                "predict with histo_gan.modules.SynthesizeImages"
            )
        images = (prediction["image"].float().clamp(0, 1) * 255).round().to(torch.uint8)
        n = len(images)
        weights = prediction.get("weight", torch.ones(n)).reshape(n).tolist()
        padding = prediction.get("is_padding", torch.zeros(n, dtype=torch.bool)).reshape(n).tolist()
        for image, label, source_id, weight, is_padding in zip(
            images, prediction["label"], prediction["image_id"], weights, padding
        ):
            sample_id = f"{self.prefix}{source_id}"
            if is_padding or sample_id in self._writer.completed_ids:
                continue
            self._writer.add(
                sample_id,
                image.permute(1, 2, 0).cpu().numpy(),
                label.cpu().numpy().astype(np.int32),
                weight=float(weight),
                meta={"source_ids": [source_id], "method": self.method},
            )

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._writer is not None:
            self._writer.__exit__(None, None, None)
            self._writer = None
