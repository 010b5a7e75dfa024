"""The PatchGAN discriminator (pix2pix), optionally spectral-normalised and conditional."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from histo_gan.networks.norm import NormKind, make_norm, uses_bias

__all__ = ["PatchDiscriminator", "patchgan_receptive_field"]


def patchgan_receptive_field(n_layers: int) -> int:
    """Receptive field (pixels) of one output logit: 70 for ``n_layers=3``."""
    kernels_strides = [(4, 2)] * n_layers + [(4, 1), (4, 1)]
    field = 1
    for kernel, stride in reversed(kernels_strides):
        field = (field - 1) * stride + kernel
    return field


class PatchDiscriminator(nn.Module):
    """``n_layers`` stride-2 4x4 convolutions, one stride-1 convolution and a 1-channel head.

    Args:
        in_channels: channels of the judged image.
        base_channels: width of the first layer (ndf); doubles per layer, capped at 8x.
        n_layers: stride-2 layers (3 gives the 70x70 PatchGAN).
        norm: normalisation of the hidden layers; ``None`` means ``batch`` without spectral
            norm and ``none`` with it (spectral norm replaces the normalisation, as in the
            released Mahmood et al. code).
        spectral_norm: wrap every convolution in spectral normalisation
            (``torch.nn.utils.parametrizations.spectral_norm``; survives ``state_dict``).
        condition_channels: channels of a conditioning image concatenated to the input
            (pix2pix's conditional D); 0 for an unconditional D.

    Forward: ``(x, condition=None)``, ``x`` ``(B, in_channels, H, W)`` -> per-patch logits
    ``(B, 1, H', W')``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        n_layers: int = 3,
        norm: NormKind | None = None,
        spectral_norm: bool = False,
        condition_channels: int = 0,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        norm = norm if norm is not None else ("none" if spectral_norm else "batch")
        bias = uses_bias(norm)

        def conv(source: int, target: int, stride: int, with_bias: bool = bias) -> nn.Module:
            layer = nn.Conv2d(source, target, 4, stride=stride, padding=1, bias=with_bias)
            return apply_spectral_norm(layer) if spectral_norm else layer

        widths = [base_channels * min(2**k, 8) for k in range(n_layers + 1)]
        layers: list[nn.Module] = [
            conv(in_channels + condition_channels, widths[0], 2, True),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for k in range(1, n_layers + 1):
            stride = 2 if k < n_layers else 1
            layers += [
                conv(widths[k - 1], widths[k], stride),
                make_norm(norm, widths[k]),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(conv(widths[n_layers], 1, 1, True))
        self.model = nn.Sequential(*layers)
        self.in_channels, self.condition_channels = in_channels, condition_channels
        self.receptive_field = patchgan_receptive_field(n_layers)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {x.shape[1]}")
        if self.condition_channels:
            if condition is None:
                raise ValueError(
                    f"this discriminator is conditional: pass a {self.condition_channels}-channel condition"
                )
            if condition.shape[1] != self.condition_channels:
                raise ValueError(
                    f"expected a {self.condition_channels}-channel condition, got {condition.shape[1]}"
                )
            x = torch.cat([x, condition], dim=1)
        elif condition is not None:
            raise ValueError("this discriminator is unconditional but a condition was given")
        return self.model(x)
