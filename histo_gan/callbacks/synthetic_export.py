"""Write a generator's predictions as a histo-gan synthetic dataset (atomic, resumable)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from histo_gan.data.synthetic import SyntheticDatasetWriter
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

    Under DDP, each process synthesises its share of the label maps and rank 0 writes them
    all (gathered batch by batch): no two processes write into the dataset.

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
        metadata = {
            "method": self.method,
            "module": type(pl_module).__name__,
            "checkpoint": str(trainer.ckpt_path or ""),
        }
        failure: BaseException | None = None
        if trainer.is_global_zero:
            try:
                self._writer = SyntheticDatasetWriter(self.root, metadata).__enter__()
            except BaseException as error:  # told to every rank below, then raised here
                failure = error
        # Every rank learns whether rank 0 could open the dataset, so none waits for it.
        reason = trainer.strategy.broadcast(repr(failure) if failure else "")
        if failure is not None:
            raise failure
        if reason:
            raise RuntimeError(f"SyntheticExport: rank 0 could not open {self.root}: {reason}")

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
        samples = self._samples(prediction)
        if trainer.world_size > 1:
            # Rank 0 writes every rank's samples: one writer holds the dataset's lock.
            gathered = [None] * trainer.world_size if trainer.is_global_zero else None
            torch.distributed.gather_object(samples, gathered, dst=0)
            samples = [sample for shard in gathered or [] for sample in shard]
        if not trainer.is_global_zero:
            return
        assert self._writer is not None
        for sample_id, source_id, image, label, weight in samples:
            if sample_id in self._writer.completed_ids:
                continue
            self._writer.add(
                sample_id,
                image,
                label,
                weight=weight,
                meta={"source_ids": [source_id], "method": self.method},
            )

    def _samples(self, prediction: SynthesisPrediction) -> list[tuple]:
        """``(sample id, source id, uint8 image (H, W, 3), int32 label, weight)`` of each
        item that is not padding, on the CPU."""
        if "image" not in prediction or "label" not in prediction:
            raise ValueError(
                f"SyntheticExport needs synthesis predictions, got keys {sorted(prediction)}: "
                "predict with histo_gan.training.SynthesizeImages"
            )
        images = (prediction["image"].float().clamp(0, 1) * 255).round().to(torch.uint8)
        n = len(images)
        weights = prediction.get("weight", torch.ones(n)).reshape(n).tolist()
        padding = prediction.get("is_padding", torch.zeros(n, dtype=torch.bool)).reshape(n).tolist()
        return [
            (
                f"{self.prefix}{source_id}",
                source_id,
                image.permute(1, 2, 0).cpu().numpy(),
                label.cpu().numpy().astype(np.int32),
                float(weight),
            )
            for image, label, source_id, weight, is_padding in zip(
                images, prediction["label"], prediction["image_id"], weights, padding
            )
            if not is_padding
        ]

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._writer is not None:
            self._writer.__exit__(None, None, None)
            self._writer = None
