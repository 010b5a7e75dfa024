"""The networks' sizes equal the published reference implementations, and pix2pixHD's multiscale
discriminator judges each scale on the input pooled as in pix2pixHD."""

from __future__ import annotations

import torch
from torch import nn

from histo_gan.networks.patchgan import PatchDiscriminator
from histo_gan.networks.pix2pixhd import GlobalGenerator, LocalEnhancer, MultiscaleDiscriminator
from histo_gan.networks.resnet_generator import ResnetGenerator


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_cyclegan_resnet9_generator_and_patchgan_counts():
    with torch.device("meta"):
        assert count(ResnetGenerator(3, 3, 64, n_blocks=9)) == 11_378_179
        assert count(PatchDiscriminator(3, 64, 3, norm="instance")) == 2_764_737


def test_pix2pixhd_global_generator_and_local_enhancer_counts():
    with torch.device("meta"):
        global_generator = GlobalGenerator(3, 3, 64, n_downsampling=4, n_blocks=9)
        assert count(global_generator) == 182_443_267
        enhancer = LocalEnhancer(global_generator, base_channels=32, n_blocks=3)
    # pix2pixHD's G2 has no G1 output head; here it is kept for the coarse-to-fine global phase
    # (CoarseToFine trains G1 alone through it), so the published count is without it.
    head = count(global_generator.head)
    assert head == 9_411
    assert count(enhancer) - head == 182_701_827


def test_multiscale_discriminator_features_per_scale_match_the_pix2pixhd_definition():
    torch.manual_seed(0)
    discriminator = MultiscaleDiscriminator(3, 4, n_layers=3, n_scales=3, condition_channels=2)
    x, condition = torch.rand(2, 3, 128, 128) * 2 - 1, torch.rand(2, 2, 128, 128)
    outputs = discriminator(x, condition)
    pool = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)  # pix2pixHD
    judged = torch.cat([x, condition], dim=1)
    assert len(outputs) == 3
    for scale, (features, patchgan) in enumerate(zip(outputs, discriminator.scales)):
        if scale:
            judged = pool(judged)
        expected, h = [], judged
        for layer in patchgan.model:  # pix2pixHD's getIntermFeat: every group's output
            h = layer(h)
            if isinstance(layer, nn.LeakyReLU):
                expected.append(h)
        expected.append(h)
        assert len(features) == 3 + 2
        for got, want in zip(features, expected):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
    sides = [judged.shape[-1] for judged in (x, pool(x), pool(pool(x)))]
    assert sides == [128, 64, 32]
