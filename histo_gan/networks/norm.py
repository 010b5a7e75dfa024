"""Normalisation layers by name: the one place where the name is turned into a layer."""

from __future__ import annotations

from typing import Literal

from torch import nn

__all__ = ["NormKind", "make_norm", "uses_bias"]

NormKind = Literal["batch", "instance", "none"]


def make_norm(kind: NormKind, channels: int) -> nn.Module:
    """``batch`` -> BatchNorm2d (affine, running stats); ``instance`` -> InstanceNorm2d
    (no affine, no running stats, as CycleGAN/pix2pix); ``none`` -> identity."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'instance' or 'none', got {kind!r}")


def uses_bias(kind: NormKind) -> bool:
    """Convolutions before BatchNorm need no bias (the norm has one); the others do."""
    return kind != "batch"
