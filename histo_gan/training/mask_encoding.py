"""Instance label maps as generator-friendly images, and generator outputs as probabilities.

GANs that translate between masks and H&E (CycleGAN, the cGAN segmenter) need a mask as a
dense image. :class:`MaskEncoding` renders an instance label map as a one-hot image of
background / interior / boundary in [-1, 1] (or a single foreground channel when
``boundary_width`` is ``None``), and turns a ``tanh`` generator output of the same layout back
into class probabilities for the shared post-processing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from histo_gan.training.targets import three_class_target

__all__ = ["MaskEncoding"]


class MaskEncoding:
    """One-hot (background, interior, boundary) or single-channel foreground masks.

    Args:
        boundary_width: boundary thickness in pixels; ``None`` for a 1-channel foreground mask.
    """

    def __init__(self, boundary_width: int | None = 1) -> None:
        self.boundary_width = boundary_width

    @property
    def channels(self) -> int:
        return 1 if self.boundary_width is None else 3

    def encode(self, label: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` integer label maps -> ``(B, channels, H, W)`` float32 in {-1, 1}."""
        if self.boundary_width is None:
            return (label > 0).float()[:, None] * 2.0 - 1.0
        classes = three_class_target(label, self.boundary_width)
        return F.one_hot(classes, 3).permute(0, 3, 1, 2).float() * 2.0 - 1.0

    def to_probabilities(self, output: torch.Tensor) -> torch.Tensor:
        """``(B, channels, H, W)`` in [-1, 1] -> probabilities in [0, 1].

        The background channel alone decides the foreground: ``P(fg) = 1 - (x_bg + 1) / 2``,
        so an undecided output (0) is not foreground. The foreground is then split between
        interior and boundary in proportion to their channels. One channel is the foreground
        probability ``(x + 1) / 2``. Three-channel outputs sum to one per pixel.
        """
        unit = ((output.float() + 1.0) * 0.5).clamp(0.0, 1.0)
        if self.boundary_width is None:
            return unit
        background = unit[:, 0:1]
        interior_share = (unit[:, 1:2] + 1e-6) / (unit[:, 1:2] + unit[:, 2:3] + 2e-6)
        foreground = 1.0 - background
        return torch.cat(
            [background, foreground * interior_share, foreground * (1 - interior_share)], 1
        )

    def to_rgb(self, encoded: torch.Tensor) -> torch.Tensor:
        """A picture of an encoded mask, ``(B, 3, H, W)`` in [0, 1], for sample grids:
        interior white, boundary red, background black."""
        unit = ((encoded.float() + 1.0) * 0.5).clamp(0.0, 1.0)
        if self.boundary_width is None:
            return unit.expand(-1, 3, -1, -1)
        interior, boundary = unit[:, 1:2], unit[:, 2:3]
        return torch.cat([interior + boundary, interior, interior], dim=1).clamp(0.0, 1.0)

    def classes_to_rgb(self, classes: torch.Tensor) -> torch.Tensor:
        """A picture of a ``(B, H, W)`` background/interior/boundary class map (see :meth:`to_rgb`)."""
        return self.to_rgb(F.one_hot(classes.long(), 3).permute(0, 3, 1, 2).float() * 2.0 - 1.0)
