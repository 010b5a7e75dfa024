from __future__ import annotations

import pytest
import torch

from histo_gan.networks import (
    PatchDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    init_weights,
    make_norm,
    patchgan_receptive_field,
)


def test_resnet_generator_shape_and_range():
    g = ResnetGenerator(3, 2, base_channels=8, n_blocks=2).eval()
    out = g(torch.randn(2, 3, 32, 48) * 5)
    assert out.shape == (2, 2, 32, 48) and out.abs().max() <= 1.0
    with pytest.raises(ValueError, match="not a multiple of 4"):
        g(torch.randn(1, 3, 30, 32))


def test_unet_depth_from_patch_size_and_skip_connections():
    assert UnetGenerator(3, 1, 8, patch_size=64).depth == 6
    assert UnetGenerator(3, 1, 8, patch_size=256).depth == 8
    g = UnetGenerator(3, 1, base_channels=8, patch_size=32).eval()
    out = g(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 1, 32, 32) and out.abs().max() <= 1.0
    with pytest.raises(ValueError, match="power of two >= 32"):
        UnetGenerator(patch_size=48)
    with pytest.raises(ValueError, match="depth >= 5"):
        UnetGenerator(depth=4)
    with pytest.raises(ValueError, match="not a multiple of 32"):
        g(torch.randn(1, 3, 48, 48))


def test_unet_uses_its_skip_connections():
    """Zeroing the innermost layer must not kill the output: detail flows through the skips."""
    g = UnetGenerator(1, 1, base_channels=4, depth=5, norm="none", dropout=0.0)
    init_weights(g)
    for p in g.down[-1].parameters():
        torch.nn.init.zeros_(p)
    x = torch.randn(1, 1, 32, 32)
    assert g(x).std() > 0


def test_patchgan_receptive_field_and_output_grid():
    assert patchgan_receptive_field(3) == 70
    assert patchgan_receptive_field(1) == 16
    d = PatchDiscriminator(3, base_channels=8, n_layers=3)
    assert d.receptive_field == 70
    assert d(torch.randn(2, 3, 64, 64)).shape == (2, 1, 6, 6)


def test_conditional_discriminator_checks_its_condition():
    d = PatchDiscriminator(1, base_channels=8, n_layers=2, condition_channels=3, spectral_norm=True)
    x, c = torch.randn(1, 1, 32, 32), torch.randn(1, 3, 32, 32)
    assert d(x, c).shape[1] == 1
    with pytest.raises(ValueError, match="conditional: pass a 3-channel condition"):
        d(x)
    with pytest.raises(ValueError, match="expected a 3-channel condition, got 1"):
        d(x, x)
    with pytest.raises(ValueError, match="expected 1 input channels, got 3"):
        d(c, c)
    plain = PatchDiscriminator(1, base_channels=8, n_layers=2)
    with pytest.raises(ValueError, match="unconditional"):
        plain(x, c)


def test_spectral_norm_replaces_batch_norm_by_default():
    with_sn = PatchDiscriminator(3, 8, 3, spectral_norm=True)
    without = PatchDiscriminator(3, 8, 3)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in with_sn.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in without.modules()) == 3


def test_norm_choice():
    assert isinstance(make_norm("batch", 4), torch.nn.BatchNorm2d)
    assert isinstance(make_norm("instance", 4), torch.nn.InstanceNorm2d)
    assert isinstance(make_norm("none", 4), torch.nn.Identity)
    with pytest.raises(ValueError, match="norm must be 'batch', 'instance' or 'none'"):
        make_norm("group", 4)


def test_init_weights_statistics():
    torch.manual_seed(0)
    g = ResnetGenerator(3, 3, base_channels=16, n_blocks=1, norm="batch")
    init_weights(g)
    conv = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)][
        1
    ]  # 16 -> 32, 3x3: 4608 weights
    # 5-sigma bounds for N(0, 0.02): sd of the mean 0.02/sqrt(4608), of the std about 0.02/sqrt(2*4608)
    assert abs(conv.weight.std().item() - 0.02) < 5 * 0.02 / (2 * 4608) ** 0.5
    assert abs(conv.weight.mean().item()) < 5 * 0.02 / 4608**0.5
    weights = torch.cat([m.weight for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(weights.mean().item() - 1.0) < 5 * 0.02 / len(weights) ** 0.5
    assert all(torch.all(m.bias == 0) for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d))
