"""DAFF-GAN generators (Cheng et al., §III.B.2): pix2pixHD + criss-cross attention + long skip.

The paper states two changes to both pix2pixHD generators (global and local): a criss-cross
attention module "before the residual blocks", and a "remote skip connection" that fuses
encoder and decoder features. Its text does not say (Fig. 3 is not in our copy):

- where the long skip starts and ends, and how it fuses. Chosen here: from the output of the
  7x7 stem (full resolution of the generator, ``base_channels``) to the output of the last
  upsampling (same size and width), fused by concatenation, a reflection-padded 3x3
  convolution back to ``base_channels``, norm and ReLU, then the usual 7x7 ``tanh`` head. That
  is the longest encoder-decoder path of the network; concatenation + convolution ("feature
  fusion") lets the network weigh the two rather than forcing a sum.
- the attention's placement relative to the residual input: here it runs on the bottleneck
  features right before the first residual block (for the local enhancer: on the sum of its
  own and the global generator's features, i.e. right before its residual blocks).
- the attention's hyper-parameters: CCNet's, i.e. query/key at ``C // 8``, recurrence 2,
  ``gamma`` starting at 0 (so a fresh DAFF generator's attention is the identity).
- whether the stem/down/up layers change: they are pix2pixHD's.
"""

from __future__ import annotations

import torch
from torch import nn

from histo_gan.networks.attention import CrissCrossAttention
from histo_gan.networks.norm import NormKind, make_norm, uses_bias
from histo_gan.networks.pix2pixhd import GlobalGenerator, LocalEnhancer, _check_size

__all__ = ["DAFFGenerator", "DAFFLocalEnhancer", "SkipFusion"]


class SkipFusion(nn.Module):
    """``relu(norm(conv3x3(cat[decoder, encoder])))``: two ``(B, C, H, W)`` maps -> one."""

    def __init__(self, channels: int, norm: NormKind = "instance") -> None:
        super().__init__()
        self.fuse = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(2 * channels, channels, 3, bias=uses_bias(norm)),
            make_norm(norm, channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, decoder: torch.Tensor, encoder: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([decoder, encoder], dim=1))


class DAFFGenerator(GlobalGenerator):
    """The DAFF global generator: a pix2pixHD :class:`GlobalGenerator` with criss-cross
    attention before the residual blocks and a long skip from the stem to the last decoder
    features (see the module docstring for the choices the paper leaves open).

    Args: those of :class:`GlobalGenerator` (paper size by default: ngf 64, 4 downsamplings,
    9 blocks, instance norm), plus
        attention_reduction: query/key width ``C // attention_reduction`` (8).
        attention_recurrence: criss-cross passes (2).

    Forward: same contract as :class:`GlobalGenerator`: ``(B, in_channels, H, W)`` in [-1, 1]
    -> ``(B, out_channels, H, W)`` in [-1, 1]; :meth:`features` -> ``(B, base_channels, H, W)``,
    so a :class:`LocalEnhancer` or :class:`DAFFLocalEnhancer` can wrap it.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        n_downsampling: int = 4,
        n_blocks: int = 9,
        norm: NormKind = "instance",
        attention_reduction: int = 8,
        attention_recurrence: int = 2,
    ) -> None:
        super().__init__(in_channels, out_channels, base_channels, n_downsampling, n_blocks, norm)
        bottleneck = base_channels * 2**n_downsampling
        self.attention = CrissCrossAttention(bottleneck, attention_reduction, attention_recurrence)
        self.skip = SkipFusion(base_channels, norm)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        _check_size(x, self.multiple)
        encoder = self.stem(x)
        decoder = self.up(self.blocks(self.attention(self.down(encoder))))
        return self.skip(decoder, encoder)


class DAFFLocalEnhancer(LocalEnhancer):
    """The DAFF local generator: a pix2pixHD :class:`LocalEnhancer` with criss-cross attention
    on the summed (local + global) features before its residual blocks and a long skip from
    its stem to its last upsampling. Wrap a :class:`DAFFGenerator` for the full DAFF-GAN.

    Args: those of :class:`LocalEnhancer`, plus ``attention_reduction`` and
    ``attention_recurrence`` as in :class:`DAFFGenerator`.

    Forward: same contract as :class:`LocalEnhancer`.
    """

    def __init__(
        self,
        global_generator: GlobalGenerator,
        base_channels: int = 32,
        n_blocks: int = 3,
        norm: NormKind = "instance",
        attention_reduction: int = 8,
        attention_recurrence: int = 2,
        global_head: bool = False,
    ) -> None:
        super().__init__(global_generator, base_channels, n_blocks, norm, global_head)
        self.attention = CrissCrossAttention(
            2 * base_channels, attention_reduction, attention_recurrence
        )
        self.skip = SkipFusion(base_channels, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_size(x, self.multiple)
        coarse = self.global_generator.features(self.downsample(x))
        encoder = self.stem(x)
        decoder = self.up(self.blocks(self.attention(self.down(encoder) + coarse)))
        return self.head(self.skip(decoder, encoder))
