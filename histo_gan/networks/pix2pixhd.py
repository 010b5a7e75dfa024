"""pix2pixHD networks (Wang et al. 2018): global generator, local enhancer, multiscale D.

The generators map a conditioning image in [-1, 1] to an image in [-1, 1] (``tanh``).
Training is coarse-to-fine: the global generator is trained alone on 2x-downsampled pairs,
then wrapped by a :class:`LocalEnhancer` that works at full resolution and adds the global
generator's last features to its own (the global part frozen for a while, then joined in).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from histo_gan.networks.norm import NormKind
from histo_gan.networks.patchgan import PatchDiscriminator
from histo_gan.networks.resnet_generator import (
    ResnetBlock,
    downsampling_layers,
    head_layers,
    stem_layers,
    upsampling_layers,
)

__all__ = ["GlobalGenerator", "LocalEnhancer", "MultiscaleDiscriminator", "downsample2x"]


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """pix2pixHD's 3x3 stride-2 average pool (padding not counted): ``(B, C, H, W)`` ->
    ``(B, C, ceil(H/2), ceil(W/2))``, same dtype."""
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


def _check_size(x: torch.Tensor, multiple: int) -> None:
    if x.shape[-1] % multiple or x.shape[-2] % multiple:
        raise ValueError(f"input size {tuple(x.shape[-2:])} is not a multiple of {multiple}")


class GlobalGenerator(nn.Module):
    """pix2pixHD's G1: 7x7 stem, ``n_downsampling`` stride-2 convolutions, ``n_blocks``
    residual blocks, as many transposed convolutions, 7x7 head, ``tanh``; reflection padding.

    Args:
        in_channels: channels of the conditioning image (label map, mask + boundaries, ...).
        out_channels: channels of the generated image.
        base_channels: width of the stem (ngf, 64); doubles at each downsampling (1024 at the
            residual blocks with the defaults).
        n_downsampling: stride-2 stages (4 in pix2pixHD).
        n_blocks: residual blocks at the lowest resolution (9 in pix2pixHD).
        norm: ``instance`` (pix2pixHD), ``batch`` or ``none``.

    Forward: ``(B, in_channels, H, W)`` in [-1, 1] -> ``(B, out_channels, H, W)`` in [-1, 1];
    ``H`` and ``W`` must be multiples of ``2 ** n_downsampling``. :meth:`features` stops before
    the head and returns ``(B, base_channels, H, W)``: what a :class:`LocalEnhancer` adds to
    its own features. A :class:`LocalEnhancer` built with ``global_head=False`` removes the
    head (``head`` is then None and only :meth:`features` works).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        n_downsampling: int = 4,
        n_blocks: int = 9,
        norm: NormKind = "instance",
    ) -> None:
        super().__init__()
        widths = [base_channels * 2**k for k in range(n_downsampling + 1)]
        self.stem = nn.Sequential(*stem_layers(in_channels, base_channels, norm))
        self.down = nn.Sequential(*[m for c in widths[:-1] for m in downsampling_layers(c, norm)])
        self.blocks = nn.Sequential(*[ResnetBlock(widths[-1], norm, 0.0) for _ in range(n_blocks)])
        self.up = nn.Sequential(*[m for c in widths[:0:-1] for m in upsampling_layers(c, norm)])
        self.head = nn.Sequential(*head_layers(base_channels, out_channels))
        self.in_channels, self.out_channels = in_channels, out_channels
        self.base_channels = base_channels
        self.multiple = 2**n_downsampling

    def features(self, x: torch.Tensor) -> torch.Tensor:
        _check_size(x, self.multiple)
        return self.up(self.blocks(self.down(self.stem(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            raise RuntimeError(
                "this global generator's output head was removed by its LocalEnhancer "
                "(global_head=False): only features() works; build the enhancer with "
                "global_head=True to train or run the global generator alone"
            )
        return self.head(self.features(x))


class LocalEnhancer(nn.Module):
    """pix2pixHD's G2 around a global generator (one enhancer level).

    The global generator sees the 2x-downsampled input (:meth:`downsample`); the enhancer's
    front part (7x7 stem at ``base_channels``, one stride-2 convolution to ``2 *
    base_channels``) sees the full-resolution input; the two feature maps are added and go
    through ``n_blocks`` residual blocks, one transposed convolution and the 7x7 ``tanh`` head.
    The enhancer never uses the global generator's own 7x7 head: it is removed unless
    ``global_head`` is set, so that the parameters (and a checkpoint's keys) are those of
    pix2pixHD's G2 (182,701,827 at the published sizes).

    Args:
        global_generator: a :class:`GlobalGenerator` (or subclass, e.g. the DAFF generator)
            with ``base_channels == 2 * base_channels`` of the enhancer; its channels are the
            enhancer's channels. It stays usable alone: train it first on downsampled pairs
            (``enhancer.global_generator(enhancer.downsample(x))``), then the enhancer.
        base_channels: enhancer width (ngf, 32 in pix2pixHD).
        n_blocks: enhancer residual blocks (3 in pix2pixHD).
        norm: normalisation of the enhancer layers.
        global_head: keep the global generator's output head, for a single run that first
            trains the global generator alone through it
            (:class:`~histo_gan.training.CoarseToFine`; 9,411 parameters at the published
            sizes, trained in the global phase only). pix2pixHD trains G1 in a separate run
            and G2 has no such head: the default.

    Forward: ``(B, C_in, H, W)`` in [-1, 1] -> ``(B, C_out, H, W)`` in [-1, 1]; ``H`` and
    ``W`` must be multiples of ``2 * global_generator.multiple``.
    """

    def __init__(
        self,
        global_generator: GlobalGenerator,
        base_channels: int = 32,
        n_blocks: int = 3,
        norm: NormKind = "instance",
        global_head: bool = False,
    ) -> None:
        super().__init__()
        if global_generator.base_channels != 2 * base_channels:
            raise ValueError(
                f"the global generator must be twice as wide as the enhancer: "
                f"base_channels {global_generator.base_channels} != 2 * {base_channels}"
            )
        in_channels, out_channels = global_generator.in_channels, global_generator.out_channels
        if not global_head:
            global_generator.head = None
        self.global_generator = global_generator
        self.stem = nn.Sequential(*stem_layers(in_channels, base_channels, norm))
        self.down = nn.Sequential(*downsampling_layers(base_channels, norm))
        self.blocks = nn.Sequential(
            *[ResnetBlock(2 * base_channels, norm, 0.0) for _ in range(n_blocks)]
        )
        self.up = nn.Sequential(*upsampling_layers(2 * base_channels, norm))
        self.head = nn.Sequential(*head_layers(base_channels, out_channels))
        self.in_channels, self.out_channels = in_channels, out_channels
        self.multiple = 2 * global_generator.multiple

    @staticmethod
    def downsample(x: torch.Tensor) -> torch.Tensor:
        """The global generator's input (and, in its training phase, target): ``x`` at half size."""
        return downsample2x(x)

    def set_global_trainable(self, trainable: bool) -> None:
        """Freeze (``False``) or unfreeze (``True``) the global generator's parameters
        (``requires_grad``): pix2pixHD trains the enhancer with the global part fixed for the
        first epochs, then fine-tunes both."""
        self.global_generator.requires_grad_(trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_size(x, self.multiple)
        coarse = self.global_generator.features(self.downsample(x))
        return self.head(self.up(self.blocks(self.down(self.stem(x)) + coarse)))


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD's multiscale D: ``n_scales`` PatchGAN discriminators (separate weights), the
    first on the input, each next one on the input average-pooled once more (:func:`downsample2x`).

    Args:
        in_channels: channels of the judged image.
        base_channels: ndf of each scale (64); doubles per layer, capped at 512.
        n_layers: stride-2 layers per scale (3).
        n_scales: number of scales (2 for DAFF-GAN's 256-px patches; 3 in pix2pixHD at 2048 px).
        norm: ``instance`` (pix2pixHD), ``batch`` or ``none``.
        spectral_norm: spectral normalisation on every convolution (not in pix2pixHD).
        condition_channels: channels of the conditioning image concatenated to the input
            (pix2pixHD's conditional D); 0 for an unconditional D.

    Forward: ``(x, condition=None)`` -> a list with one entry per scale, full resolution
    first; each entry is a list of ``n_layers + 2`` tensors: the ``n_layers + 1`` intermediate
    features (after each LeakyReLU) then the ``(B, 1, h, w)`` logits last. This is the format
    of :class:`~histo_gan.losses.FeatureMatchingLoss` and of the adversarial losses.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        n_layers: int = 3,
        n_scales: int = 2,
        norm: NormKind = "instance",
        spectral_norm: bool = False,
        condition_channels: int = 0,
    ) -> None:
        super().__init__()
        if n_scales < 1:
            raise ValueError(f"n_scales must be >= 1, got {n_scales}")
        self.scales = nn.ModuleList(
            PatchDiscriminator(
                in_channels + condition_channels, base_channels, n_layers, norm, spectral_norm
            )
            for _ in range(n_scales)
        )
        self.in_channels, self.condition_channels = in_channels, condition_channels

    def forward(
        self, x: torch.Tensor, condition: torch.Tensor | None = None
    ) -> list[list[torch.Tensor]]:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {x.shape[1]}")
        if (condition is None) != (self.condition_channels == 0):
            raise ValueError(
                f"this discriminator takes a {self.condition_channels}-channel condition"
                if self.condition_channels
                else "this discriminator is unconditional but a condition was given"
            )
        if condition is not None:
            if condition.shape[1] != self.condition_channels:
                raise ValueError(
                    f"expected a {self.condition_channels}-channel condition, got {condition.shape[1]}"
                )
            x = torch.cat([x, condition], dim=1)
        outputs = []
        for index, discriminator in enumerate(self.scales):
            if index:
                x = downsample2x(x)
            outputs.append(_intermediate_features(discriminator, x))
        return outputs


def _intermediate_features(
    discriminator: PatchDiscriminator, x: torch.Tensor
) -> list[torch.Tensor]:
    """Runs the PatchGAN's layers one by one, keeping the output of every LeakyReLU (the end
    of each conv-[norm]-LeakyReLU group) and the final logits."""
    features = []
    for layer in discriminator.model:
        x = layer(x)
        if isinstance(layer, nn.LeakyReLU):
            features.append(x)
    return features + [x]
