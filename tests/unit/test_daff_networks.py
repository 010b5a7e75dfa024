"""DAFF-GAN / pix2pixHD networks and losses: criss-cross attention, generators, multiscale D,
feature matching, VGG perceptual loss. CPU, tiny sizes."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torchvision.models import vgg19

from histo_gan.losses import FeatureMatchingLoss, LSGANLoss, VGGPerceptualLoss
from histo_gan.networks import (
    CrissCrossAttention,
    DAFFGenerator,
    DAFFLocalEnhancer,
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
)


def _attention(channels=16, recurrence=1, gamma=0.7, seed=0) -> CrissCrossAttention:
    torch.manual_seed(seed)
    block = CrissCrossAttention(channels, recurrence=recurrence)
    with torch.no_grad():
        block.gamma.fill_(gamma)
    return block


def _cross_mask(height: int, width: int) -> torch.Tensor:
    """(HW, HW) bool: key j is on the row or column of query i."""
    rows = torch.arange(height).repeat_interleave(width)
    cols = torch.arange(width).repeat(height)
    return (rows[:, None] == rows[None, :]) | (cols[:, None] == cols[None, :])


def _naive_criss_cross(block: CrissCrossAttention, x: torch.Tensor) -> torch.Tensor:
    """One pass as dense attention over all HW positions, masked to the criss-cross."""
    batch, channels, height, width = x.shape
    q = block.query(x).flatten(2)  # (B, C', HW)
    k = block.key(x).flatten(2)
    v = block.value(x).flatten(2)  # (B, C, HW)
    energy = torch.einsum("bci,bcj->bij", q, k)
    energy = energy.masked_fill(~_cross_mask(height, width), float("-inf"))
    weights = torch.softmax(energy, dim=-1)
    out = torch.einsum("bij,bcj->bci", weights, v).reshape(batch, channels, height, width)
    return x + block.gamma * out


# --- criss-cross attention -------------------------------------------------------------------


def test_attention_keeps_shape_and_is_identity_at_gamma_zero():
    torch.manual_seed(0)
    block = CrissCrossAttention(16)  # gamma starts at 0
    assert block.gamma.item() == 0.0 and block.recurrence == 2
    assert block.query.out_channels == 2 and block.value.out_channels == 16
    x = torch.randn(2, 16, 5, 7)
    out = block(x)
    assert out.shape == x.shape
    assert torch.equal(out, x)
    with torch.no_grad():
        block.gamma.fill_(0.5)
    assert not torch.allclose(block(x), x, atol=1e-3)


def test_attention_weights_cover_exactly_row_and_column_and_sum_to_one():
    block = _attention(channels=8)
    height, width = 4, 5
    weights = block.attention_weights(torch.randn(2, 8, height, width))
    assert weights.shape == (2, height * width, height * width)
    cross = _cross_mask(height, width).expand_as(weights)
    assert (weights[cross] > 0).all()
    assert (weights[~cross] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, height * width))


def test_attention_equals_naive_masked_dense_attention():
    x = torch.randn(2, 16, 6, 5)
    block = _attention(channels=16, recurrence=1)
    with torch.no_grad():
        torch.testing.assert_close(block(x), _naive_criss_cross(block, x), atol=1e-5, rtol=1e-5)
        twice = _attention(channels=16, recurrence=2)
        expected = _naive_criss_cross(twice, _naive_criss_cross(twice, x))
        torch.testing.assert_close(twice(x), expected, atol=1e-5, rtol=1e-5)


def test_attention_under_bf16_autocast_on_cpu():
    block = _attention(channels=16, recurrence=2)
    x = torch.randn(1, 16, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = block(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), block(x), atol=0.1, rtol=0.05)
    out.float().sum().backward()
    assert block.query.weight.grad is not None and torch.isfinite(block.query.weight.grad).all()
    bf16 = block.to(torch.bfloat16)(x.to(torch.bfloat16))  # plain bf16 weights and inputs
    assert bf16.dtype == torch.bfloat16 and torch.isfinite(bf16).all()


@pytest.mark.parametrize("recurrence", [1, 2])
def test_recurrence_two_reaches_every_position(recurrence):
    """d out[:, :, p] / d x is non-zero at every position after two passes; after one pass it
    is non-zero exactly on the criss-cross of p."""
    height, width = 4, 5
    block = _attention(channels=8, recurrence=recurrence)
    x = torch.randn(1, 8, height, width, requires_grad=True)
    out = block(x)
    cross = _cross_mask(height, width)
    for p in range(height * width):
        (grad,) = torch.autograd.grad(out.flatten(2)[0, :, p].sum(), x, retain_graph=True)
        reached = grad.abs().sum(1).flatten() > 0
        expected = torch.ones_like(reached) if recurrence == 2 else cross[p]
        assert torch.equal(reached, expected), f"position {p}"


# --- multiscale discriminator and feature matching ---------------------------------------------


@pytest.mark.parametrize(("n_scales", "n_layers"), [(2, 3), (3, 2)])
def test_multiscale_discriminator_returns_features_then_logits_per_scale(n_scales, n_layers):
    d = MultiscaleDiscriminator(3, base_channels=8, n_layers=n_layers, n_scales=n_scales)
    x = torch.randn(2, 3, 64, 64)
    outputs = d(x)
    assert len(outputs) == n_scales
    for scale, features in enumerate(outputs):
        assert len(features) == n_layers + 2
        assert features[-1].shape[:2] == (2, 1)
        assert features[0].shape[-1] == 64 // 2 ** (scale + 1)  # first layer halves the input
        assert [f.shape[1] for f in features[:-1]] == [
            8 * min(2**k, 8) for k in range(n_layers + 1)
        ]
    # scale k sees the input pooled k times; its last entry is that PatchGAN's plain output
    torch.testing.assert_close(outputs[0][-1], d.scales[0].model(x))
    assert outputs[1][-1].shape[-1] < outputs[0][-1].shape[-1]
    loss = LSGANLoss().generator_loss(outputs)  # adversarial losses take this format
    assert loss.ndim == 0 and loss > 0


def test_conditional_multiscale_discriminator_checks_its_condition():
    d = MultiscaleDiscriminator(3, base_channels=4, n_layers=2, condition_channels=1)
    x, mask = torch.randn(1, 3, 32, 32), torch.randn(1, 1, 32, 32)
    assert len(d(x, mask)) == 2
    with pytest.raises(ValueError, match="takes a 1-channel condition"):
        d(x)
    with pytest.raises(ValueError, match="expected a 1-channel condition"):
        d(x, torch.randn(1, 2, 32, 32))


def test_feature_matching_is_zero_for_identical_inputs_and_positive_otherwise():
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(3, base_channels=4, n_layers=2)
    fm = FeatureMatchingLoss()
    x = torch.randn(2, 3, 32, 32)
    assert fm(d(x), d(x)).item() == 0.0
    y = x + 0.1 * torch.randn_like(x)
    loss = fm(d(y), d(x))
    assert loss > 0
    # weight 10, mean over layers (not the logits) and scales, done by hand
    fake, real = d(y), d(x)
    by_hand = sum(
        sum((f - r).abs().mean() for f, r in zip(fs[:-1], rs[:-1])) / (len(fs) - 1)
        for fs, rs in zip(fake, real)
    ) / len(fake)
    torch.testing.assert_close(loss, 10 * by_hand)
    with pytest.raises(ValueError, match="fake scales"):
        fm(fake[:1], real)


def test_feature_matching_sends_no_gradient_into_the_discriminator():
    torch.manual_seed(0)
    generator = nn.Conv2d(3, 3, 3, padding=1)
    d = MultiscaleDiscriminator(3, base_channels=4, n_layers=2, norm="none")
    fm = FeatureMatchingLoss()
    x, real = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)

    # Real branch: the loss itself detaches it. A copy of D scores the fake, so only the real
    # branch goes through ``d``; without the detach ``d`` would get gradients here.
    fm(copy.deepcopy(d)(generator(x)), d(real)).backward()
    assert all(p.grad is None for p in d.parameters())
    generator.zero_grad()

    # Generator step as the module runs it: D frozen by the caller, gradients reach G only.
    d.requires_grad_(False)
    fm(d(generator(x)), d(real)).backward()
    assert all(p.grad is None for p in d.parameters())
    assert generator.weight.grad is not None and generator.weight.grad.abs().sum() > 0

    # Control: with D left trainable the fake branch does reach D (the checks above can fail).
    d.requires_grad_(True)
    fm(d(generator(x)), d(real)).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())


# --- generators ------------------------------------------------------------------------------


def _tiny_global(cls=GlobalGenerator, **kwargs):
    return cls(
        in_channels=2, out_channels=3, base_channels=8, n_downsampling=2, n_blocks=1, **kwargs
    )


@pytest.mark.parametrize("cls", [GlobalGenerator, DAFFGenerator])
def test_global_generators_share_the_call_contract(cls):
    torch.manual_seed(0)
    g = _tiny_global(cls)
    x = torch.rand(2, 2, 32, 48) * 2 - 1
    out = g(x)
    assert out.shape == (2, 3, 32, 48) and out.dtype == torch.float32
    assert out.abs().max() <= 1.0 and out.std() > 0
    assert g.features(x).shape == (2, 8, 32, 48)
    with pytest.raises(ValueError, match="not a multiple of 4"):
        g(torch.randn(1, 2, 30, 32))


def test_daff_generator_adds_attention_and_long_skip_to_pix2pixhd():
    torch.manual_seed(0)
    daff = _tiny_global(DAFFGenerator)
    assert daff.attention.query.in_channels == 32 and daff.attention.recurrence == 2
    torch.manual_seed(0)
    plain = _tiny_global()
    assert len(plain.state_dict()) < len(daff.state_dict())
    # the long skip carries the input past the bottleneck: with the residual path through the
    # bottleneck zeroed out, the output still depends on the input
    with torch.no_grad():
        for p in daff.up.parameters():
            p.zero_()
    x = torch.randn(1, 2, 16, 16)
    assert not torch.allclose(daff(x), daff(torch.randn(1, 2, 16, 16)))
    plain_up_zero = _tiny_global()
    with torch.no_grad():
        for p in plain_up_zero.up.parameters():
            p.zero_()
    out = plain_up_zero(x)
    torch.testing.assert_close(out, plain_up_zero(torch.randn(1, 2, 16, 16)))


@pytest.mark.parametrize(
    ("global_cls", "enhancer_cls"),
    [(GlobalGenerator, LocalEnhancer), (DAFFGenerator, DAFFLocalEnhancer)],
)
def test_local_enhancer_wraps_a_trainable_or_frozen_global_generator(global_cls, enhancer_cls):
    torch.manual_seed(0)
    global_g = _tiny_global(global_cls)
    enhancer = enhancer_cls(
        global_generator=global_g, base_channels=4, n_blocks=1, global_head=True
    )
    x = torch.rand(2, 2, 64, 32) * 2 - 1
    out = enhancer(x)
    assert out.shape == (2, 3, 64, 32) and out.abs().max() <= 1.0
    assert enhancer.multiple == 8
    # the global generator alone: coarse training on the half-size input
    half = enhancer.downsample(x)
    assert half.shape[-2:] == (32, 16) and enhancer.global_generator(half).shape == (2, 3, 32, 16)
    # the enhancer uses the global generator's features: changing them changes its output
    with torch.no_grad():
        global_g.stem[1].weight.mul_(2)
    assert not torch.allclose(enhancer(x), out)

    enhancer.set_global_trainable(False)
    enhancer(x).mean().backward()
    assert all(p.grad is None for p in global_g.parameters())
    assert enhancer.stem[1].weight.grad.abs().sum() > 0
    enhancer.set_global_trainable(True)
    enhancer(x).mean().backward()
    assert global_g.stem[1].weight.grad.abs().sum() > 0
    assert global_g.head[1].weight.grad is None  # the global head is unused by the enhancer

    with pytest.raises(ValueError, match="twice as wide"):
        enhancer_cls(global_generator=global_g, base_channels=8)
    with pytest.raises(ValueError, match="not a multiple of 8"):
        enhancer(torch.randn(1, 2, 36, 32))


def test_paper_size_parameter_counts():
    """pix2pixHD's global generator (ngf 64, 4 downsamplings, 9 blocks) and the DAFF one, built
    on the meta device (shapes only, no memory)."""

    def count(module):
        return sum(p.numel() for p in module.parameters())

    with torch.device("meta"):
        plain, daff = GlobalGenerator(1, 3), DAFFGenerator(1, 3)
    for g in (plain, daff):
        assert count(g.blocks) == 9 * 2 * (1024 * 1024 * 9 + 1024)  # biased 3x3 convs, no affine
        print(f"{type(g).__name__}(1 -> 3): {count(g):,} parameters")
    assert count(plain) == 182_436_995
    assert count(daff.attention) == 2 * (1024 * 128 + 128) + 1024 * 1024 + 1024 + 1
    assert count(daff.skip) == 128 * 64 * 9 + 64
    assert count(daff) - count(plain) == count(daff.attention) + count(daff.skip)


# --- VGG perceptual loss ---------------------------------------------------------------------


@pytest.fixture
def no_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_perceptual_loss_is_off_without_weights_and_says_so(tmp_path, no_downloads):
    with pytest.warns(UserWarning, match="perceptual loss is OFF .no weights_path given"):
        loss = VGGPerceptualLoss()
    assert not loss.enabled
    assert loss(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)).item() == 0.0
    missing = tmp_path / "vgg19.pth"
    with pytest.warns(UserWarning, match="vgg19.pth not found"):
        assert not VGGPerceptualLoss(missing).enabled


def test_perceptual_loss_loads_local_weights(tmp_path, no_downloads):
    torch.manual_seed(0)
    reference = vgg19(weights=None)  # the architecture only; never downloads
    path = tmp_path / "vgg19_features.pth"
    features = {k: v for k, v in reference.state_dict().items() if k.startswith("features.")}
    torch.save(features, path)
    loss = VGGPerceptualLoss(path)
    assert loss.enabled and loss.state_dict() == {}  # kept out of checkpoints
    torch.testing.assert_close(loss._vgg[0][28].weight, reference.features[28].weight)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(x, x.clone()).item() == 0.0
    fake = (x + 0.2 * torch.randn_like(x)).clamp(-1, 1).requires_grad_(True)
    value = loss(fake, x)
    assert value > 0
    value.backward()
    assert fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss._vgg[0].parameters())
    assert loss(x[:, :1], x[:, :1]).item() == 0.0  # one channel is repeated to three
