"""Normalisation layers by name (the one place where the name is turned into a layer), and
running a network on its running statistics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from torch import nn

__all__ = ["NormKind", "eval_mode", "make_norm", "uses_bias"]

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


@contextmanager
def eval_mode(network: nn.Module) -> Iterator[nn.Module]:
    """Run ``network`` in eval mode (batch norm on running statistics), then restore its mode."""
    was_training = network.training
    network.eval()
    try:
        yield network
    finally:
        network.train(was_training)
