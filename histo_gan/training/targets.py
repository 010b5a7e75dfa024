"""Training targets derived from instance label maps (torch, any device)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["BACKGROUND", "BOUNDARY", "INTERIOR", "instance_boundaries", "three_class_target"]

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2


def instance_boundaries(label: torch.Tensor, width: int = 1) -> torch.Tensor:
    """Inner boundaries of the instances in ``label``.

    A foreground pixel is a boundary pixel when one of its 4-neighbours has another id
    (background or a different nucleus); image borders do not count as boundaries. The band
    is then grown inwards to ``width`` pixels (inside the foreground only).

    Args:
        label: integer ``(B, H, W)`` instance label maps.
        width: boundary thickness in pixels, >= 1.

    Returns:
        ``bool`` ``(B, H, W)``.
    """
    if width < 1:
        raise ValueError(f"boundary width must be >= 1, got {width}")
    padded = F.pad(label[:, None].float(), (1, 1, 1, 1), mode="replicate")[:, 0]
    centre = padded[:, 1:-1, 1:-1]
    differs = torch.zeros_like(centre, dtype=torch.bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        neighbour = padded[:, dy : dy + label.shape[1], dx : dx + label.shape[2]]
        differs |= neighbour != centre
    foreground = label > 0
    boundary = differs & foreground
    if width > 1:
        grown = F.max_pool2d(boundary[:, None].float(), 2 * width - 1, stride=1, padding=width - 1)
        boundary = (grown[:, 0] > 0) & foreground
    return boundary


def three_class_target(label: torch.Tensor, boundary_width: int = 1) -> torch.Tensor:
    """Background (0) / interior (1) / boundary (2) classes, ``int64`` ``(B, H, W)``."""
    target = (label > 0).long()
    target[instance_boundaries(label, boundary_width)] = BOUNDARY
    return target
