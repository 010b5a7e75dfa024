"""A segmentation head: the network, its training targets, its loss and its probabilities.

One plain ``nn.Module`` used by :class:`~histo_gan.modules.SegmenterModule`, by the segmenter
that the Hou refiners train jointly with their generator, and by any importance-weighted
training, so that every method segments, is trained and is evaluated the same way. Targets are
background / interior / boundary classes (:func:`~histo_gan.training.targets.three_class_target`).
"""

from __future__ import annotations

import torch
from torch import nn

from histo_gan.losses.segmentation import CrossEntropyDiceLoss
from histo_gan.networks.segmenter import SmpUnet
from histo_gan.training.mask_encoding import MaskEncoding
from histo_gan.training.targets import three_class_target

__all__ = ["SegmentationHead"]


class SegmentationHead(nn.Module):
    """Args:
    network: ``(B, 3, H, W)`` images in [0, 1] -> ``(B, 3, H, W)`` logits (default:
        :class:`~histo_gan.networks.SmpUnet`, ResNet-34, no pretrained weights).
    loss: a per-sample segmentation loss with ``per_sample(logits, target) -> (B,)`` and
        ``forward(logits, target, sample_weight)`` (default: CE + Dice).
    boundary_width: thickness of the boundary class in pixels.
    """

    def __init__(
        self,
        network: nn.Module | None = None,
        loss: nn.Module | None = None,
        boundary_width: int = 2,
    ) -> None:
        super().__init__()
        self.network = network if network is not None else SmpUnet()
        self.criterion = loss if loss is not None else CrossEntropyDiceLoss()
        self.boundary_width = boundary_width

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, H, W)`` logits."""
        return self.network(image)

    def probabilities(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``float32`` ``(B, 3, H, W)`` class probabilities (the
        evaluator's input; softmax in fp32 also under bf16 autocast)."""
        return self.network(image).float().softmax(dim=1)

    def targets(self, label: torch.Tensor) -> torch.Tensor:
        """``int32`` ``(B, H, W)`` instance maps -> ``int64`` ``(B, H, W)`` classes 0/1/2."""
        return three_class_target(label, self.boundary_width)

    def per_sample_loss(self, image: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Unweighted loss of each sample, ``float32`` ``(B,)``."""
        return self.criterion.per_sample(self.network(image), self.targets(label))

    def loss(
        self, image: torch.Tensor, label: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scalar loss; ``weight`` ``(B,)`` weights the samples (normalised to their sum)."""
        return self.criterion(self.network(image), self.targets(label), weight)

    @torch.no_grad()
    def sample_rows(self, image: torch.Tensor, label: torch.Tensor) -> dict[str, torch.Tensor]:
        """Rows of a sample grid: image, target classes, predicted classes (RGB in [0, 1])."""
        encoding = MaskEncoding(self.boundary_width)
        return {
            "image": image,
            "target": encoding.classes_to_rgb(self.targets(label)),
            "prediction": encoding.classes_to_rgb(self.network(image).argmax(dim=1)),
        }
