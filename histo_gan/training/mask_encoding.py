"""Instance label maps as generator-friendly images, and generator outputs as probabilities.

GANs that translate between masks and H&E (CycleGAN, the cGAN segmenter) need a mask as a
dense image. :class:`MaskEncoding` renders an instance label map as a one-hot image of
background / interior / boundary in [-1, 1] (or a single foreground channel when
``boundary_width`` is ``None``), or, with a ``palette``, as a flat colour picture (one RGB
colour per class), and turns a ``tanh`` generator output of the same layout back into class
probabilities for the shared post-processing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from histo_gan.training.targets import three_class_target

__all__ = ["HE_PALETTE", "MaskEncoding"]

#: Background, interior and boundary as flat H&E colours (RGB in [0, 1]): pink stroma, purple
#: nucleus, a darker rim. Nuclei are *dark* here, as in tissue, so a colour-preserving map
#: (what the identity term of a CycleGAN starts from) already has the right polarity.
HE_PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.92, 0.72, 0.86),
    (0.42, 0.26, 0.58),
    (0.18, 0.10, 0.32),
)


class MaskEncoding:
    """One-hot (background, interior, boundary), single-channel foreground, or palette masks.

    Args:
        boundary_width: boundary thickness in pixels; ``None`` for foreground/background only
            (one channel without a palette).
        palette: one RGB colour in [0, 1] per class (background, interior[, boundary]: three
            with a ``boundary_width``, two without); the mask becomes a 3-channel picture in
            [-1, 1] and outputs are read back by their nearest colour (soft, see
            :meth:`to_probabilities`). ``None``: one-hot channels.
        temperature: softness of the palette read-back, in squared [-1, 1] colour distance.
    """

    def __init__(
        self,
        boundary_width: int | None = 1,
        palette: Sequence[Sequence[float]] | None = None,
        temperature: float = 0.05,
    ) -> None:
        self.boundary_width = boundary_width
        self.temperature = temperature
        self.palette = None
        if palette is not None:
            colours = torch.as_tensor(palette, dtype=torch.float32)
            classes = 2 if boundary_width is None else 3
            if colours.shape != (classes, 3) or colours.min() < 0 or colours.max() > 1:
                raise ValueError(
                    f"palette: expected {classes} RGB colours in [0, 1] (background, interior"
                    f"{', boundary' if classes == 3 else ''}), got {palette}"
                )
            self.palette = colours * 2.0 - 1.0

    @property
    def channels(self) -> int:
        return 3 if self.palette is not None or self.boundary_width is not None else 1

    def classes(self, label: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` label maps -> ``int64`` classes: background 0, interior 1, boundary 2
        (no boundary class without a ``boundary_width``)."""
        if self.boundary_width is None:
            return (label > 0).long()
        return three_class_target(label, self.boundary_width)

    def encode(self, label: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` integer label maps -> ``(B, channels, H, W)`` float32 in [-1, 1]."""
        return self.encode_classes(self.classes(label))

    def encode_classes(self, classes: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` class maps (see :meth:`classes`) -> ``(B, channels, H, W)`` in [-1, 1]."""
        if self.palette is not None:
            return self.palette.to(classes.device)[classes].permute(0, 3, 1, 2).contiguous()
        if self.boundary_width is None:
            return classes.float()[:, None] * 2.0 - 1.0
        return F.one_hot(classes, 3).permute(0, 3, 1, 2).float() * 2.0 - 1.0

    def to_probabilities(self, output: torch.Tensor) -> torch.Tensor:
        """``(B, channels, H, W)`` in [-1, 1] -> probabilities in [0, 1].

        Palette: ``softmax(-|x - c_k|² / temperature)`` over the classes' colours ``c_k``
        (3 channels with a boundary class; 1, the foreground, without). One-hot: the
        background channel alone decides the foreground: ``P(fg) = 1 - (x_bg + 1) / 2``, so an
        undecided output (0) is not foreground, and the foreground is split between interior
        and boundary in proportion to their channels. One channel is the foreground
        probability ``(x + 1) / 2``. Three-channel outputs sum to one per pixel.
        """
        if self.palette is not None:
            colours = self.palette.to(output.device)
            distance = (output.float()[:, None] - colours[None, :, :, None, None]).square().sum(2)
            probabilities = torch.softmax(-distance / self.temperature, dim=1)
            return 1.0 - probabilities[:, :1] if len(colours) == 2 else probabilities
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
        """A picture of an encoded mask, ``(B, 3, H, W)`` in [0, 1], for sample grids: the
        palette's colours themselves, else interior white, boundary red, background black."""
        unit = ((encoded.float() + 1.0) * 0.5).clamp(0.0, 1.0)
        if self.palette is not None:
            return unit
        if self.boundary_width is None:
            return unit.expand(-1, 3, -1, -1)
        interior, boundary = unit[:, 1:2], unit[:, 2:3]
        return torch.cat([interior + boundary, interior, interior], dim=1).clamp(0.0, 1.0)

    def classes_to_rgb(self, classes: torch.Tensor) -> torch.Tensor:
        """A picture of a ``(B, H, W)`` background/interior/boundary class map (see :meth:`to_rgb`)."""
        return self.to_rgb(self.encode_classes(classes.long()))
