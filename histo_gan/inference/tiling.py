"""Deterministic sliding-window inference: cut a whole image into tiles, stitch outputs back.

Validation and test run on whole images (metrics must see complete nuclei); networks see
fixed-size tiles. Tiles start on a regular grid with the given overlap, the last row/column is
shifted inwards to end exactly at the image border, and overlapping outputs are averaged with
a weight window (uniform, or Gaussian to down-weight tile borders).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["SlidingWindow", "padded_call", "tile_starts"]


def padded_call(network: Callable, x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``network(x)`` for an ``x`` ``(B, C, H, W)`` of any size: reflection-padded at the
    bottom and right to multiples of ``multiple``, the output cropped back to ``(H, W)``."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (0, -w % multiple, 0, -h % multiple), mode="reflect")
    return network(padded)[..., :h, :w]


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets covering ``[0, length)`` with tiles of ``tile`` and step ``stride``.

    The last start is ``length - tile`` so the final tile ends at the border. Requires
    ``length >= tile``.
    """
    if length < tile:
        raise ValueError(f"length {length} is smaller than the tile {tile}")
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


class SlidingWindow:
    """Predict a whole image tile by tile.

    Args:
        tile_size: side of the square tiles, pixels.
        overlap: fraction of a tile shared with its neighbour, in [0, 1).
        batch_size: tiles per forward call.
        blend: ``"gaussian"`` (sigma = tile/8, as nnU-Net/MONAI) or ``"uniform"``.
    """

    def __init__(
        self,
        tile_size: int = 256,
        overlap: float = 0.25,
        batch_size: int = 8,
        blend: str = "gaussian",
    ) -> None:
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if blend not in ("gaussian", "uniform"):
            raise ValueError(f"blend must be 'gaussian' or 'uniform', got {blend!r}")
        self.tile_size, self.overlap, self.batch_size, self.blend = (
            tile_size,
            overlap,
            batch_size,
            blend,
        )
        self.stride = max(1, int(round(tile_size * (1.0 - overlap))))

    def _window(self, device: torch.device) -> torch.Tensor:
        if self.blend == "uniform":
            return torch.ones(self.tile_size, self.tile_size, device=device)
        centre = (self.tile_size - 1) / 2.0
        coords = torch.arange(self.tile_size, device=device, dtype=torch.float32) - centre
        g = torch.exp(-0.5 * (coords / (self.tile_size / 8.0)) ** 2)
        window = g[:, None] * g[None, :]
        return (window / window.max()).clamp_min(1e-3)

    @torch.no_grad()
    def __call__(
        self, predict: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor
    ) -> torch.Tensor:
        """Run ``predict`` over tiles of ``image`` and stitch the outputs.

        Args:
            predict: maps ``(N, C_in, t, t)`` to ``(N, C_out, t, t)`` float outputs.
            image: ``(B, C_in, H, W)``; images smaller than a tile are reflect-padded.

        Returns:
            ``(B, C_out, H, W)`` float32, the weighted average of overlapping tile outputs.
        """
        batch, _, height, width = image.shape
        pad_h, pad_w = max(0, self.tile_size - height), max(0, self.tile_size - width)
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
        full_h, full_w = image.shape[-2:]
        origins = [
            (y, x)
            for y in tile_starts(full_h, self.tile_size, self.stride)
            for x in tile_starts(full_w, self.tile_size, self.stride)
        ]
        window = self._window(image.device)
        output: torch.Tensor | None = None
        weight = torch.zeros(1, 1, full_h, full_w, device=image.device)
        t = self.tile_size
        for b in range(batch):
            for first in range(0, len(origins), self.batch_size):
                chunk = origins[first : first + self.batch_size]
                tiles = torch.stack([image[b, :, y : y + t, x : x + t] for y, x in chunk])
                result = predict(tiles).float()
                if result.shape[-2:] != (t, t):
                    raise ValueError(
                        f"predict returned tiles of {tuple(result.shape[-2:])}, expected {(t, t)}"
                    )
                if output is None:
                    output = torch.zeros(
                        batch, result.shape[1], full_h, full_w, device=image.device
                    )
                for (y, x), tile_out in zip(chunk, result):
                    output[b, :, y : y + t, x : x + t] += tile_out * window
                    if b == 0:
                        weight[0, 0, y : y + t, x : x + t] += window
        assert output is not None
        return (output / weight)[..., :height, :width]
