"""The cGAN segmenter's foreground-weighted L1 (the fix of its empty-mask collapse)."""

from __future__ import annotations

import torch

from histo_gan.losses import foreground_weighted_l1, l1_loss


def test_weight_one_is_plain_l1_and_weights_scale_samples():
    prediction, target = torch.rand(3, 3, 8, 8) * 2 - 1, torch.rand(3, 3, 8, 8) * 2 - 1
    foreground = torch.rand(3, 8, 8) > 0.7
    weight = torch.tensor([1.0, 0.0, 2.0])
    assert torch.allclose(
        foreground_weighted_l1(prediction, target, foreground, 1.0, weight),
        l1_loss(prediction, target, weight),
    )


def test_foreground_weight_moves_the_optimum_of_an_ambiguous_pixel_to_foreground():
    # Five pixels the generator cannot tell apart (one constant output), one of them nucleus
    # (a nucleus share of 1/5). Plain L1 is minimised by the median (background, -1); a weight
    # above 4 makes foreground cheaper, so the generator no longer learns an empty mask.
    target = torch.tensor([1.0, -1.0, -1.0, -1.0, -1.0]).view(1, 1, 1, 5)
    foreground = target[:, 0] > 0

    def cost(value: float, weight: float) -> float:
        prediction = torch.full_like(target, value)
        return float(foreground_weighted_l1(prediction, target, foreground, weight))

    assert cost(-1.0, 1.0) < cost(1.0, 1.0)
    assert cost(1.0, 6.0) < cost(-1.0, 6.0)


def test_per_sample_mean_counts_foreground_pixels_weight_times():
    target = -torch.ones(1, 1, 1, 4)
    prediction = target.clone()
    prediction[..., 0] = 1.0  # error 2 on the one foreground pixel
    foreground = torch.tensor([[[True, False, False, False]]])
    # (3 * 2) / (3 + 1 + 1 + 1) = 1.0 with weight 3; plain L1: 2 / 4 = 0.5
    assert float(foreground_weighted_l1(prediction, target, foreground, 3.0)) == 1.0
    assert float(foreground_weighted_l1(prediction, target, foreground, 1.0)) == 0.5
