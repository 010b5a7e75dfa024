"""The networks' sizes equal the published reference implementations (and hold no parameter
they never use), and pix2pixHD's multiscale discriminator judges each scale on the input pooled
as in pix2pixHD."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from histo_gan.networks.patchgan import PatchDiscriminator
from histo_gan.networks.pix2pixhd import GlobalGenerator, LocalEnhancer, MultiscaleDiscriminator
from histo_gan.networks.resnet_generator import ResnetGenerator
from histo_gan.networks.segmenter import SmpUnet


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_cyclegan_resnet9_generator_and_patchgan_counts():
    with torch.device("meta"):
        assert count(ResnetGenerator(3, 3, 64, n_blocks=9)) == 11_378_179
        assert count(PatchDiscriminator(3, 64, 3, norm="instance")) == 2_764_737


def test_pix2pixhd_global_generator_and_local_enhancer_counts():
    with torch.device("meta"):
        assert count(GlobalGenerator(3, 3, 64, n_downsampling=4, n_blocks=9)) == 182_443_267
        enhancer = LocalEnhancer(GlobalGenerator(3, 3, 64, n_downsampling=4, n_blocks=9), 32, 3)
        assert count(enhancer) == 182_701_827  # pix2pixHD's G2: no G1 output head
        assert not any(key.startswith("global_generator.head") for key in enhancer.state_dict())
        # a single coarse-to-fine run keeps G1's head for its global phase: 9,411 more
        kept = LocalEnhancer(
            GlobalGenerator(3, 3, 64, n_downsampling=4, n_blocks=9), 32, 3, global_head=True
        )
        assert count(kept) == 182_701_827 + 9_411


def test_the_global_generator_without_its_head_says_why_it_cannot_run_alone():
    enhancer = LocalEnhancer(GlobalGenerator(3, 3, 16, n_downsampling=2, n_blocks=1), 8, 1)
    x = torch.zeros(1, 3, 32, 32)
    assert enhancer(x).shape == (1, 3, 32, 32)
    with pytest.raises(RuntimeError, match="global_head=True"):
        enhancer.global_generator(x)


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


def test_the_segmenter_holds_only_the_encoder_stages_it_uses():
    torch.manual_seed(0)
    unet = SmpUnet("resnet18", encoder_depth=4, decoder_channels=(128, 64, 32, 16))
    names = [name for name, _ in unet.named_parameters()]
    assert not any(".layer4." in name for name in names)
    assert any(".layer3." in name for name in names)
    # resnet18 without fc has 11,176,512 parameters, its layer4 8,393,728 (torchvision)
    encoder = sum(p.numel() for p in unet.net.encoder.parameters())
    assert encoder == 11_176_512 - 8_393_728
    unet(torch.rand(2, 3, 32, 32)).square().mean().backward()
    assert all(p.grad is not None for p in unet.parameters())
    # the probe batch that found the unused stage left no trace in the BatchNorm statistics
    assert unet.net.encoder.bn1.num_batches_tracked == 1  # the forward above only
