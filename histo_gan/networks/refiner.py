"""The reference-conditioned refiner G(I, S) and pair discriminator D(X, S) of Hou et al.

Both networks are the "asymmetric siamese" design of hou2017 §3 (Fig. 4) and hou2019 §4.2
(Fig. 5): a *texture branch* encodes the real reference patch S into one feature vector by
global average pooling; the vector is tiled over the spatial grid and concatenated, early, into
the main branch that refines (G) or judges (D) the other patch. The reference is a different
crop than the patch it conditions, so only its global statistics (stain, texture) can matter;
the pooled vector says so by construction.

Choices where the papers are silent (layer sizes follow the authors' released TensorFlow code
where it is explicit):

- 3x3 convolutions with zero padding keep the spatial size (the released code uses unpadded
  convolutions and fixed input sizes); LeakyReLU(0.2) and BatchNorm by default, as released.
- The texture branch is a convolution, a 3x3 stride-2 average pool, more convolutions and a
  global average pool: 5 convolutions and 2 pooling layers by default.
- G is *residual*: ``X = clamp(I + r(I, S), -1, 1)`` (hou2019 Fig. 5 draws the residual
  connection; the released refiner adds its output to I and clips to [-1, 1]). With the default
  ``blocks=7`` G has the paper's 21 convolutions and 2 pooling layers (hou2017 §6.1).
- G has *no* normalisation by default (the papers name none; the released code uses batch
  norm). With batch norm the residual ``r`` of a patch depends on its batch in training and on
  running statistics in eval mode (export), so the eval-mode G drifts from the G that was
  trained: on MoNuSeg, after ``L_reg``-only training mean ``|X - I|`` was 0.015 in train mode
  and 0.019 in eval mode, with 0.0003 at init, where fresh running statistics hid a random
  residual. Instance norm would remove the tiled texture vector (a per-channel constant), i.e.
  the reference. :meth:`ReferenceRefiner.zero_residual` makes G the exact identity.
- D keeps a per-location logit map (the local adversarial loss of S+U): with the defaults it
  has the paper's 15 convolutions and 3 pooling layers (hou2017 §6.1) and one logit per
  location of a grid ``ceil(H / 2)`` x ``ceil(W / 2)``.
- ``use_reference=False`` builds neither texture branch nor its parameters (the "no reference
  style" ablation: hou2017 Tab. 4, hou2019 Tab. 3); ``forward`` then ignores ``reference``.

Images are float tensors in [-1, 1] (map batches with :func:`histo_gan.types.to_signed`).
A 6-channel PatchGAN that sees ``cat(X, S)`` is the drop-in alternative for D:
``PatchDiscriminator(in_channels=3, condition_channels=3)`` is called as ``D(x, s)`` too.
"""

from __future__ import annotations

import torch
from torch import nn

from histo_gan.networks.norm import NormKind, make_norm, uses_bias

__all__ = ["PairDiscriminator", "ReferenceRefiner", "TextureEncoder", "tile_features"]


def _conv_block(source: int, target: int, norm: NormKind) -> list[nn.Module]:
    """3x3 convolution (size kept), normalisation, LeakyReLU(0.2)."""
    return [
        nn.Conv2d(source, target, 3, padding=1, bias=uses_bias(norm)),
        make_norm(norm, target),
        nn.LeakyReLU(0.2, inplace=True),
    ]


def _pool() -> nn.Module:
    """3x3 stride-2 average pool, as in the released code; output side ``ceil(side / 2)``."""
    return nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)


def tile_features(vector: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(B, C)`` -> ``(B, C, H, W)``, repeated over the spatial grid of ``like``."""
    return vector[:, :, None, None].expand(-1, -1, *like.shape[-2:])


class TextureEncoder(nn.Module):
    """The texture branch: ``convs`` 3x3 convolutions with one average pool after the first,
    then global average pooling.

    Args:
        in_channels: channels of the reference image.
        channels: width of every layer and length of the output vector.
        convs: number of convolutions (>= 1).
        norm: normalisation after each convolution.

    Forward: ``(B, in_channels, H, W)`` -> ``(B, channels)``, any ``H, W >= 1``.
    """

    def __init__(
        self, in_channels: int = 3, channels: int = 32, convs: int = 5, norm: NormKind = "batch"
    ) -> None:
        super().__init__()
        if convs < 1:
            raise ValueError(f"the texture branch needs at least one convolution, got {convs}")
        layers = [*_conv_block(in_channels, channels, norm), _pool()]
        for _ in range(convs - 1):
            layers += _conv_block(channels, channels, norm)
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.body = nn.Sequential(*layers)
        self.channels = channels

    def forward(self, reference: torch.Tensor) -> torch.Tensor:
        return self.body(reference).flatten(1)


class _ResidualBlock(nn.Module):
    """Two conv-norm-LeakyReLU layers, plus the input when the widths agree (the released
    refiner drops the shortcut of its first block, whose input carries the texture vector)."""

    def __init__(self, source: int, target: int, norm: NormKind) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_block(source, target, norm), *_conv_block(target, target, norm)
        )
        self.shortcut = source == target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.shortcut else out


def _check_reference(use_reference: bool, image: torch.Tensor, reference: torch.Tensor | None):
    if not use_reference:
        return
    if reference is None:
        raise ValueError("this network uses a reference patch: pass reference=S")
    if reference.shape[:2] != image.shape[:2]:
        raise ValueError(
            f"reference batch/channels {tuple(reference.shape[:2])} differ from the image's "
            f"{tuple(image.shape[:2])}"
        )


class _ReferenceConditioned(nn.Module):
    """The part G and D share: a stem convolution on the main input and, with
    ``use_reference``, the texture branch whose tiled vector joins the stem's features.
    Subclasses call :meth:`_build_stem` in ``__init__`` and :meth:`_stem_features` first in
    ``forward``."""

    def _build_stem(
        self,
        channels: int,
        base_channels: int,
        texture_channels: int,
        texture_convs: int,
        norm: NormKind,
        use_reference: bool,
    ) -> int:
        """Build ``self.texture`` and ``self.stem``; returns the width of the fused features."""
        self.use_reference = use_reference
        self.texture = (
            TextureEncoder(channels, texture_channels, texture_convs, norm)
            if use_reference
            else None
        )
        self.stem = nn.Sequential(*_conv_block(channels, base_channels, norm))
        return base_channels + (texture_channels if use_reference else 0)

    def _stem_features(self, x: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """``(B, channels, H, W)`` -> the stem's features with the reference's tiled texture
        vector concatenated (``(B, fused width, H, W)``)."""
        _check_reference(self.use_reference, x, reference)
        features = self.stem(x)
        if self.texture is not None:
            features = torch.cat([features, tile_features(self.texture(reference), features)], 1)
        return features


class ReferenceRefiner(_ReferenceConditioned):
    """G(I, S): refines the initial synthetic patch I in the style of the real reference S.

    Refinement branch: a stem convolution on I; the tiled texture vector of S is concatenated to
    its features; ``blocks`` residual blocks; a 3x3 head to ``channels`` outputs ``r``;
    ``X = clamp(I + r, -1, 1)``.

    Args:
        channels: image channels (3 for RGB).
        base_channels: width of the refinement branch.
        texture_channels: width (and vector length) of the texture branch.
        texture_convs: convolutions in the texture branch.
        blocks: residual blocks (2 convolutions each) in the refinement branch.
        norm: normalisation of the hidden layers, both branches (``none`` by default; ``batch``
            as released; ``instance`` erases the texture vector, see the module docstring).
        use_reference: build and use the texture branch; ``False`` is the no-reference ablation.

    Forward: ``(initial, reference=None)``, both ``float32`` ``(B, channels, H, W)`` in [-1, 1]
    (``reference`` may have another ``H, W``) -> refined ``(B, channels, H, W)`` in [-1, 1].

    Runs channels-last (``channels_last = True``): 1.2x under bf16 autocast at the CPU
    protocol size (``benchmarks/training_speed.py``).
    """

    channels_last = True

    def __init__(
        self,
        channels: int = 3,
        base_channels: int = 32,
        texture_channels: int = 32,
        texture_convs: int = 5,
        blocks: int = 7,
        norm: NormKind = "none",
        use_reference: bool = True,
    ) -> None:
        super().__init__()
        if blocks < 1:
            raise ValueError(f"the refiner needs at least one residual block, got {blocks}")
        fused = self._build_stem(
            channels, base_channels, texture_channels, texture_convs, norm, use_reference
        )
        self.blocks = nn.Sequential(
            _ResidualBlock(fused, base_channels, norm),
            *(_ResidualBlock(base_channels, base_channels, norm) for _ in range(blocks - 1)),
        )
        self.head = nn.Conv2d(base_channels, channels, 3, padding=1)

    def forward(self, initial: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        residual = self.head(self.blocks(self._stem_features(initial, reference)))
        return (initial + residual).clamp(-1.0, 1.0)

    @torch.no_grad()
    def zero_residual(self) -> ReferenceRefiner:
        """Zero the head, so that ``r = 0`` and G is the identity until trained (the state
        Algorithm 1's ``L_reg`` pre-training aims at; the rest of G stays random, so the head
        still receives gradients). Returns ``self``."""
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        return self


class PairDiscriminator(_ReferenceConditioned):
    """D(X, S): per-location logits that X is a real patch in the style of the reference S.

    Judging branch: a stem convolution on X; the tiled texture vector of S is concatenated to
    its features; ``downsamplings + 1`` stages of ``convs_per_stage`` convolutions with an
    average pool between stages (width doubling per stage); a 1x1 head to one logit.

    Args:
        channels: image channels.
        base_channels: width of the first stage.
        texture_channels, texture_convs: the texture branch (as in :class:`ReferenceRefiner`).
        downsamplings: stride-2 average pools in the judging branch.
        convs_per_stage: 3x3 convolutions per stage.
        norm: normalisation of the hidden layers.
        use_reference: build and use the texture branch (S+U's D without it).

    Forward: ``(x, reference=None)``, ``float32`` ``(B, channels, H, W)`` in [-1, 1] ->
    raw logits ``(B, 1, H', W')`` with ``H' = ceil(H / 2**downsamplings)``; the sigmoid of a
    logit is D's probability that its region is real.
    """

    def __init__(
        self,
        channels: int = 3,
        base_channels: int = 32,
        texture_channels: int = 32,
        texture_convs: int = 5,
        downsamplings: int = 1,
        convs_per_stage: int = 4,
        norm: NormKind = "batch",
        use_reference: bool = True,
    ) -> None:
        super().__init__()
        if convs_per_stage < 1 or downsamplings < 0:
            raise ValueError(
                f"need convs_per_stage >= 1 and downsamplings >= 0, got {convs_per_stage} "
                f"and {downsamplings}"
            )
        width = self._build_stem(
            channels, base_channels, texture_channels, texture_convs, norm, use_reference
        )
        layers: list[nn.Module] = []
        for stage in range(downsamplings + 1):
            if stage:
                layers.append(_pool())
            target = base_channels * 2**stage
            for _ in range(convs_per_stage):
                layers += _conv_block(width, target, norm)
                width = target
        layers.append(nn.Conv2d(width, 1, 1))
        self.body = nn.Sequential(*layers)
        self.downsamplings = downsamplings

    def forward(self, x: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(self._stem_features(x, reference))
