"""The supervised baseline: a segmenter trained on labeled patches (real, synthetic or both).

This is the "real data only" row of every comparison and the task network that the
synthetic-data methods are judged by. The network predicts three classes per pixel
(background / interior / boundary, see :mod:`histo_gan.modules.targets`); evaluation turns
the probabilities into instances with the shared post-processing and scores them with the
shared metric collection, on whole images.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from histo_gan.data.tiling import SlidingWindow
from histo_gan.losses.segmentation import CrossEntropyDiceLoss
from histo_gan.metrics.postprocess import InstancePostprocessor
from histo_gan.modules.evaluation import EvaluatesWholeImages, WholeImageEvaluator
from histo_gan.modules.mask_encoding import MaskEncoding
from histo_gan.modules.targets import three_class_target
from histo_gan.networks.segmenter import SmpUnet

__all__ = ["SegmenterModule"]


class SegmenterModule(EvaluatesWholeImages, L.LightningModule):
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
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["network", "loss", "sliding_window", "postprocess"])
        self.network = network if network is not None else SmpUnet()
        self.loss = loss if loss is not None else CrossEntropyDiceLoss()
        self.boundary_width = boundary_width
        self.optimizer_factory, self.scheduler_factory = optimizer, lr_scheduler
        self.evaluator = WholeImageEvaluator(
            sliding_window or SlidingWindow(), postprocess or InstancePostprocessor()
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, H, W)`` class probabilities."""
        return self.network(image).softmax(dim=1)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self.network(batch["image"])
        target = three_class_target(batch["label"], self.boundary_width)
        loss = self.loss(logits, target, batch.get("weight"))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    @torch.no_grad()
    def sample_images(self, batch: dict) -> dict[str, torch.Tensor]:
        """Rows of the sample grid: image, target classes, predicted classes."""
        encoding = MaskEncoding(self.boundary_width)
        predicted = self.network(batch["image"]).argmax(dim=1)
        target = three_class_target(batch["label"], self.boundary_width)
        return {
            "image": batch["image"],
            "target": encoding.classes_to_rgb(target),
            "prediction": encoding.classes_to_rgb(predicted),
        }

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.network.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}
