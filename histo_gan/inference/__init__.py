"""Inference helpers shared by every module: whole images in, network outputs out (pure torch)."""

from histo_gan.inference.tiling import SlidingWindow, padded_call, tile_starts

__all__ = ["SlidingWindow", "padded_call", "tile_starts"]
