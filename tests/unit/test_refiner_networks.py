"""Hou refiners' pure-torch parts: G(I, S), D(X, S), importance weights, L_reg."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from histo_gan.losses import (
    CrossEntropyDiceLoss,
    ImportanceWeighting,
    importance_weights,
    real_probability,
    refiner_regularization,
)
from histo_gan.networks import PairDiscriminator, PatchDiscriminator, ReferenceRefiner


def tiny_refiner(**kwargs) -> ReferenceRefiner:
    options = dict(base_channels=8, texture_channels=4, texture_convs=2, blocks=1)
    return ReferenceRefiner(**(options | kwargs))


def tiny_discriminator(**kwargs) -> PairDiscriminator:
    options = dict(base_channels=8, texture_channels=4, texture_convs=2, convs_per_stage=1)
    return PairDiscriminator(**(options | kwargs))


def signed(*shape: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=generator) * 2 - 1


def count(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


def test_paper_sizes_by_default():
    """hou2017 §6.1: refiner 21 conv + 2 pooling layers, discriminator 15 conv + 3 pooling."""
    pools = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)
    g, d = ReferenceRefiner(), PairDiscriminator()
    assert count(g, nn.Conv2d) == 21 and count(g, pools) == 2
    assert count(d, nn.Conv2d) == 15 and count(d, pools) == 3


def test_refiner_output_shape_range_and_residual():
    g = tiny_refiner().eval()
    initial, reference = signed(2, 3, 40, 48), signed(2, 3, 32, 32, seed=1)
    out = g(initial, reference)
    assert out.shape == initial.shape and out.dtype == torch.float32
    assert out.min() >= -1.0 and out.max() <= 1.0
    # Residual: with the head zeroed, G is the identity.
    nn.init.zeros_(g.head.weight)
    nn.init.zeros_(g.head.bias)
    assert torch.equal(g(initial, reference), initial)


def test_refiner_output_is_clamped_to_the_image_range():
    g = tiny_refiner(norm="none").eval()
    nn.init.zeros_(g.head.weight)
    nn.init.constant_(g.head.bias, 0.5)
    initial = torch.full((1, 3, 32, 32), 0.8)
    out = g(initial, signed(1, 3, 32, 32))
    assert torch.allclose(out, torch.ones_like(out))


def test_reference_branch_is_used_only_when_enabled():
    torch.manual_seed(0)
    g = tiny_refiner().eval()
    initial = signed(2, 3, 32, 32)
    a, b = g(initial, signed(2, 3, 32, 32, seed=1)), g(initial, signed(2, 3, 32, 32, seed=2))
    assert (a - b).abs().max() > 1e-4

    plain = tiny_refiner(use_reference=False).eval()
    assert plain.texture is None
    assert not any("texture" in name for name, _ in plain.named_parameters())
    same = plain(initial, signed(2, 3, 32, 32, seed=1))
    assert torch.equal(same, plain(initial, signed(2, 3, 32, 32, seed=2)))
    assert torch.equal(same, plain(initial))
    with pytest.raises(ValueError, match="reference"):
        g(initial)


def test_discriminator_gives_per_location_logits_that_depend_on_the_reference():
    torch.manual_seed(0)
    d = tiny_discriminator().eval()
    x = signed(2, 3, 32, 48)
    logits = d(x, signed(2, 3, 32, 32, seed=1))
    assert logits.shape == (2, 1, 16, 24)
    assert logits.flatten(1).std(dim=1).min() > 0  # not one value broadcast over the grid
    assert (logits - d(x, signed(2, 3, 32, 32, seed=2))).abs().max() > 1e-5
    # Locality: changing one corner of X leaves the far corner's logit unchanged.
    moved = x.clone()
    moved[:, :, :4, :4] = 0.0
    changed = (d(moved, signed(2, 3, 32, 32, seed=1)) - logits).abs()[0, 0]
    assert changed[0, 0] > 0 and changed[-1, -1] == 0

    assert tiny_discriminator(downsamplings=2)(x, x).shape == (2, 1, 8, 12)
    plain = tiny_discriminator(use_reference=False).eval()
    assert torch.equal(plain(x, signed(2, 3, 32, 32, seed=1)), plain(x))


def test_six_channel_patchgan_is_call_compatible():
    """The concat alternative: PatchDiscriminator on cat(X, S), called as D(x, s)."""
    d = PatchDiscriminator(3, base_channels=8, n_layers=2, condition_channels=3)
    assert d(signed(2, 3, 64, 64), signed(2, 3, 64, 64, seed=1)).shape == (2, 1, 14, 14)


def test_importance_weights_equal_the_hand_computation():
    # D's logits at 2x2 locations for 4 samples; probabilities chosen exactly.
    probs = torch.tensor(
        [
            [0.5, 0.5, 0.5, 0.5],  # p = 0.5   -> odds 1
            [0.8, 0.8, 0.8, 0.8],  # p = 0.8   -> odds 4   -> clipped to 2
            [0.1, 0.1, 0.1, 0.1],  # p = 0.1   -> odds 1/9 -> clipped to 0.2
            [0.2, 0.4, 0.3, 0.3],  # p = 0.3   -> odds 3/7
        ]
    )
    logits = torch.logit(probs).reshape(4, 1, 2, 2)
    p = real_probability(logits)
    assert torch.allclose(p, torch.tensor([0.5, 0.8, 0.1, 0.3]), atol=1e-6)

    # c = 1.5: 1.5 * [1, 4, 1/9, 3/7] = [1.5, 6, 1/6, 9/14] -> clip [0.2, 2] -> [1.5, 2, 0.2, 9/14]
    clipped = [1.5, 2.0, 0.2, 9 / 14]
    mean = sum(clipped) / 4
    expected = torch.tensor([v / mean for v in clipped])
    raw = importance_weights(p, c=1.5, clip=(0.2, 2.0))
    assert raw.shape == (4,) and torch.allclose(raw, torch.tensor(clipped), atol=1e-5)
    weighting = ImportanceWeighting(c=1.5, clip=(0.2, 2.0))
    assert torch.equal(weighting.for_export(p), raw)
    w = weighting.for_segmenter(p, torch.ones(4), torch.ones(4))  # normalised to mean 1
    assert torch.allclose(w, expected, atol=1e-5) and torch.isclose(w.mean(), torch.tensor(1.0))
    # A per-location map is averaged per sample first.
    assert torch.allclose(importance_weights(torch.sigmoid(logits), c=1.5), raw)


def test_importance_weights_are_finite_at_certainty():
    w = importance_weights(torch.tensor([1.0, 0.0, 0.5]), clip=None)
    assert torch.isfinite(w).all() and w[0] > 1e5 and w[1] == 0 and w[2] == 1
    clipped = importance_weights(torch.tensor([1.0, 1.0]), clip=(0.2, 2.0))
    assert torch.equal(clipped, torch.full((2,), 2.0))
    with pytest.raises(ValueError, match="clip"):
        importance_weights(torch.tensor([0.5]), clip=(2.0, 0.2))


def test_no_gradient_reaches_discriminator_output_through_the_weights():
    logits = torch.randn(3, 1, 4, 4, requires_grad=True)
    seg_logits = torch.randn(3, 2, 8, 8, requires_grad=True)
    target = torch.randint(0, 2, (3, 8, 8))
    w = importance_weights(real_probability(logits))
    assert not w.requires_grad
    per_sample = CrossEntropyDiceLoss().per_sample(seg_logits, target)
    assert per_sample.shape == (3,)
    (w * per_sample).mean().backward()
    assert logits.grad is None and seg_logits.grad is not None


def test_refiner_regularization_by_hand():
    initial = torch.zeros(2, 1, 2, 2)
    refined = torch.tensor([[[[1.0, -1.0], [0.0, 2.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    # |d|: 1 + 1 + 0 + 2 = 4 over 8 values; d^2: 1 + 1 + 0 + 4 = 6 over 8 values.
    loss = refiner_regularization(refined, initial, l1_weight=0.1, l2_weight=0.01)
    assert torch.isclose(loss, torch.tensor(0.1 * 4 / 8 + 0.01 * 6 / 8))
    # sum: per-sample sums (4 and 0; 6 and 0), then the batch mean.
    summed = refiner_regularization(refined, initial, 0.1, 0.01, reduction="sum")
    assert torch.isclose(summed, torch.tensor(0.1 * 2 + 0.01 * 3))
    per_sample = refiner_regularization(refined, initial, 0.1, 0.01, reduction="none")
    torch.testing.assert_close(per_sample, torch.tensor([0.1 * 4 + 0.01 * 6, 0.0]))
    with pytest.raises(ValueError, match="reduction"):
        refiner_regularization(refined, initial, 1, 1, reduction="max")
