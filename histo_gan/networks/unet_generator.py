"""The pix2pix U-Net generator (Isola et al. 2017), as used by Mahmood et al. 2019."""

from __future__ import annotations

import math

import torch
from torch import nn

from histo_gan.networks.norm import NormKind, make_norm, uses_bias

__all__ = ["UnetGenerator"]


class UnetGenerator(nn.Module):
    """Encoder of ``depth`` stride-2 4x4 convolutions, mirrored decoder, skip connections.

    Widths are ``base_channels * 2**k`` capped at ``8 * base_channels``. Encoder activations
    are LeakyReLU(0.2), decoder ReLU, output ``tanh``; the first encoder and last decoder
    layer have no normalisation, nor has the innermost encoder layer. Dropout acts on the
    decoder layers between two ``8 * base_channels`` levels (pix2pix's middle blocks).

    Args:
        in_channels, out_channels: image channels.
        base_channels: ngf (64 in pix2pix).
        depth: number of downsamplings; ``None`` takes ``log2(patch_size)`` (8 for
            ``unet_256``), bringing the bottleneck to 1x1. At least 5.
        patch_size: training patch size, used when ``depth`` is ``None`` (a power of two).
        norm: ``batch`` (pix2pix), ``instance`` or ``none``.
        dropout: dropout rate of the middle decoder layers (0.5 in pix2pix).

    Forward: ``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)`` in [-1, 1]; ``H`` and
    ``W`` must be multiples of ``2 ** depth``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        depth: int | None = None,
        patch_size: int = 256,
        norm: NormKind = "batch",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if depth is None:
            if patch_size < 32 or patch_size & (patch_size - 1):
                raise ValueError(
                    f"patch_size must be a power of two >= 32 to derive the depth, got {patch_size}"
                )
            depth = int(math.log2(patch_size))
        if depth < 5:
            raise ValueError(f"a pix2pix U-Net needs depth >= 5, got {depth}")
        bias = uses_bias(norm)
        widths = [min(base_channels * 2**k, 8 * base_channels) for k in range(depth)]
        self.down = nn.ModuleList()
        for k in range(depth):
            layers: list[nn.Module] = [] if k == 0 else [nn.LeakyReLU(0.2, inplace=True)]
            source = in_channels if k == 0 else widths[k - 1]
            layers.append(nn.Conv2d(source, widths[k], 4, stride=2, padding=1, bias=bias))
            if 0 < k < depth - 1:
                layers.append(make_norm(norm, widths[k]))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for k in reversed(range(depth)):
            source = widths[k] if k == depth - 1 else 2 * widths[k]
            target = widths[k - 1] if k > 0 else out_channels
            layers = [nn.ReLU(inplace=True)]
            if k == 0:
                layers += [nn.ConvTranspose2d(source, target, 4, stride=2, padding=1), nn.Tanh()]
            else:
                layers += [
                    nn.ConvTranspose2d(source, target, 4, stride=2, padding=1, bias=bias),
                    make_norm(norm, target),
                ]
                middle = widths[k - 1] == widths[k] == 8 * base_channels and k < depth - 1
                if middle and dropout > 0:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        multiple = 2**self.depth
        if x.shape[-1] % multiple or x.shape[-2] % multiple:
            raise ValueError(f"input size {tuple(x.shape[-2:])} is not a multiple of {multiple}")
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = skips.pop()
        for i, layer in enumerate(self.up):
            if i > 0:
                x = torch.cat([x, skips.pop()], dim=1)
            x = layer(x)
        return x
