"""The supervised baseline: a segmenter trained on labeled patches (real, synthetic or both).

This is the "real data only" row of every comparison and the task network that the
synthetic-data methods are judged by. The network predicts three classes per pixel
(background / interior / boundary, see :mod:`histo_gan.training.targets`) through the shared
:class:`~histo_gan.training.segmentation_head.SegmentationHead`; evaluation turns the
probabilities into instances with the shared post-processing and scores them with the shared
metric collection, on whole images.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from histo_gan.inference.tiling import SlidingWindow
from histo_gan.metrics.postprocess import InstancePostprocessor
from histo_gan.training.evaluation import (
    Predictor,
    Segment,
    SegmenterEvaluation,
    SegmentImages,
    WholeImageEvaluator,
)
from histo_gan.training.segmentation_head import SegmentationHead
from histo_gan.types import TrainBatch

__all__ = ["SegmenterModule"]


class SegmenterModule(SegmenterEvaluation, L.LightningModule):
    """Supervised nucleus segmentation with CE + Dice on interior/boundary targets.

    Args:
        network: maps ``(B, 3, H, W)`` images in [0, 1] to ``(B, 3, H, W)`` logits
            (default: :class:`~histo_gan.networks.segmenter.SmpUnet`, ResNet-34, no weights).
        loss: per-sample-weighted segmentation loss (synthetic importance weights apply).
        boundary_width: thickness of the boundary class in pixels.
        optimizer: optimizer factory (``class_path`` of a torch optimizer in YAML).
        lr_scheduler: optional scheduler factory.
        sliding_window: tiling of whole images at evaluation.
        postprocess: probabilities -> instance label maps.
        predictor: what ``predict`` does (default: segment whole images).
    """

    def __init__(
        self,
        network: nn.Module | None = None,
        loss: nn.Module | None = None,
        boundary_width: int = 2,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        sliding_window: SlidingWindow | None = None,
        postprocess: InstancePostprocessor | None = None,
        predictor: Predictor | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            ignore=["network", "loss", "sliding_window", "postprocess", "predictor"]
        )
        self.head = SegmentationHead(network, loss, boundary_width)
        self.optimizer_factory, self.scheduler_factory = optimizer, lr_scheduler
        self.evaluator = WholeImageEvaluator(sliding_window, postprocess)
        self.predictor = predictor or SegmentImages()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, H, W)`` class probabilities."""
        return self.head.probabilities(image)

    def segmenter(self) -> Segment:
        return self.head.probabilities

    def training_step(self, batch: TrainBatch, batch_idx: int) -> torch.Tensor:
        loss = self.head.loss(batch["image"], batch["label"], batch.get("weight"))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["image"]))
        return loss

    def sample_images(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """Rows of the sample grid: image, target classes, predicted classes."""
        return self.head.sample_rows(batch["image"], batch["label"])

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.head.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}
