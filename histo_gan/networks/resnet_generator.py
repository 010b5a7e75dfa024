"""The ResNet image-to-image generator of CycleGAN (Johnson et al. 2016; Zhu et al. 2017)."""

from __future__ import annotations

from typing import Literal

from torch import nn

from histo_gan.networks.norm import NormKind, make_norm, uses_bias

__all__ = [
    "ResnetBlock",
    "ResnetGenerator",
    "downsampling_layers",
    "head_layers",
    "stem_layers",
    "upsampling_layers",
]


def stem_layers(in_channels: int, out_channels: int, norm: NormKind) -> list[nn.Module]:
    """Reflection-padded 7x7 convolution, norm, ReLU; keeps the spatial size."""
    return [
        nn.ReflectionPad2d(3),
        nn.Conv2d(in_channels, out_channels, 7, bias=uses_bias(norm)),
        make_norm(norm, out_channels),
        nn.ReLU(inplace=True),
    ]


def downsampling_layers(channels: int, norm: NormKind) -> list[nn.Module]:
    """Stride-2 3x3 convolution ``channels -> 2 * channels``, norm, ReLU; halves H and W."""
    return [
        nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=uses_bias(norm)),
        make_norm(norm, channels * 2),
        nn.ReLU(inplace=True),
    ]


def upsampling_layers(channels: int, norm: NormKind) -> list[nn.Module]:
    """Stride-2 transposed 3x3 convolution ``channels -> channels // 2``, norm, ReLU;
    doubles H and W."""
    return [
        nn.ConvTranspose2d(
            channels,
            channels // 2,
            3,
            stride=2,
            padding=1,
            output_padding=1,
            bias=uses_bias(norm),
        ),
        make_norm(norm, channels // 2),
        nn.ReLU(inplace=True),
    ]


def head_layers(in_channels: int, out_channels: int, tanh: bool = True) -> list[nn.Module]:
    """Reflection-padded 7x7 convolution to the output channels, then ``tanh`` if asked."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, out_channels, 7)]
    return layers + [nn.Tanh()] if tanh else layers


class ResnetBlock(nn.Module):
    """``x + conv-norm-relu-[dropout]-conv-norm(x)`` with reflection padding."""

    def __init__(self, channels: int, norm: NormKind, dropout: float) -> None:
        super().__init__()
        bias = uses_bias(norm)
        layers = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(norm, channels),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(norm, channels),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """7x7 stem, ``n_downsampling`` stride-2 convolutions, ``n_blocks`` residual blocks, as many
    transposed convolutions, 7x7 head and ``tanh``.

    Args:
        in_channels, out_channels: image channels.
        base_channels: width of the stem (ngf); doubles at each downsampling.
        n_blocks: residual blocks (9 for 256-px images in CycleGAN and Mahmood et al.).
        n_downsampling: stride-2 stages (2).
        norm: ``instance`` (CycleGAN), ``batch`` or ``none``.
        dropout: dropout inside residual blocks.
        output_activation: ``tanh`` (outputs in [-1, 1]) or ``none`` (raw outputs).

    Forward: ``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)``; ``H`` and ``W`` must
    be multiples of ``2 ** n_downsampling``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        n_blocks: int = 9,
        n_downsampling: int = 2,
        norm: NormKind = "instance",
        dropout: float = 0.0,
        output_activation: Literal["tanh", "none"] = "tanh",
    ) -> None:
        super().__init__()
        if output_activation not in ("tanh", "none"):
            raise ValueError(
                f"output_activation must be 'tanh' or 'none', got {output_activation!r}"
            )
        layers = stem_layers(in_channels, base_channels, norm)
        channels = base_channels
        for _ in range(n_downsampling):
            layers += downsampling_layers(channels, norm)
            channels *= 2
        layers += [ResnetBlock(channels, norm, dropout) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers += upsampling_layers(channels, norm)
            channels //= 2
        layers += head_layers(channels, out_channels, tanh=output_activation == "tanh")
        self.model = nn.Sequential(*layers)
        self.multiple = 2**n_downsampling

    def forward(self, x):
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise ValueError(
                f"input size {tuple(x.shape[-2:])} is not a multiple of {self.multiple}"
            )
        return self.model(x)
