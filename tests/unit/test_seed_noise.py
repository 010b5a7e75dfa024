"""histo_gan.metrics.seed_noise: the training-noise components of a paired difference,
checked by hand and against simulated runs of known variance."""

from __future__ import annotations

import numpy as np
import pytest

from histo_gan.metrics import seed_noise


def test_a_shift_shared_by_all_images_is_training_noise_of_the_run_alone():
    # y = m_i + u_s, no per-image noise: u = (0, 0.1, 0.2), so s_u^2 = var(u) = 0.01
    values = np.array([0.3, 0.5, 0.7, 0.4])[None, :] + np.array([0.0, 0.1, 0.2])[:, None]
    shared, per_image = seed_noise.arm_components(values)
    assert shared == pytest.approx(0.01) and per_image == pytest.approx(0.0, abs=1e-12)


def test_noise_that_cancels_in_the_seed_means_is_per_image_noise():
    # e = [[a, -a], [-a, a]]: both seeds have the same image mean (v = 0); per image the two
    # seeds differ by 2a (w = 2a^2), so s_e^2 = (w - v) I / (I - 1) = 4a^2 and s_u^2 = 0
    a = 0.05
    values = np.array([[0.4 + a, 0.6 - a], [0.4 - a, 0.6 + a]])
    shared, per_image = seed_noise.arm_components(values)
    assert per_image == pytest.approx(4 * a * a) and shared == 0.0


def test_one_seed_gives_no_estimate():
    with pytest.raises(ValueError, match="two or more seeds"):
        seed_noise.arm_components(np.ones((1, 5)))
    with pytest.raises(ValueError, match="no arm has two or more seeds"):
        seed_noise.pooled_noise([np.ones((1, 5))])


def test_pooling_weights_each_arm_by_its_seeds_minus_one():
    three = np.array([0.3, 0.5, 0.7])[None, :] + np.array([0.0, 0.1, 0.2])[:, None]  # s_u^2 .01
    two = np.array([0.3, 0.5, 0.7])[None, :] + np.array([0.0, 0.4])[:, None]  # s_u^2 0.08
    noise = seed_noise.pooled_noise([three, two, np.ones((1, 3))])
    assert noise.shared == pytest.approx((2 * 0.01 + 1 * 0.08) / 3)
    assert (noise.arms, noise.degrees_of_freedom) == (2, 3)


def test_detectable_difference_is_2_80_standard_errors():
    assert seed_noise.detectable(1.0) == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    assert seed_noise.detectable(0.0004) == pytest.approx(0.02 * 2.801585, abs=1e-6)


def test_estimates_and_variance_match_simulated_runs():
    """Runs drawn from the model with known s_u, s_e, s_img: the pooled estimates are unbiased
    and Var(D) predicts the spread of the paired difference over repeated experiments."""
    rng = np.random.default_rng(0)
    s_u, s_e, s_img, n_images, s_a, s_r = 0.02, 0.03, 0.05, 11, 2, 3
    truth = rng.uniform(0.2, 0.6, n_images)
    differences, shared, per_image, spreads = [], [], [], []
    for _ in range(4000):
        effect = 0.03 + rng.normal(0, s_img, n_images)

        def runs(seeds, mean):
            return mean + rng.normal(0, s_u, (seeds, 1)) + rng.normal(0, s_e, (seeds, n_images))

        arm, ref = runs(s_a, truth + effect), runs(s_r, truth)
        noise = seed_noise.pooled_noise([arm, ref])
        shared.append(noise.shared)
        per_image.append(noise.per_image)
        d = arm.mean(0) - ref.mean(0)
        differences.append(d.mean())
        spreads.append(d.var(ddof=1) - noise.per_image * (1 / s_a + 1 / s_r))
    assert np.mean(shared) == pytest.approx(s_u**2, rel=0.1)
    assert np.mean(per_image) == pytest.approx(s_e**2, rel=0.05)
    assert np.mean(spreads) == pytest.approx(s_img**2, rel=0.05)
    known = seed_noise.TrainingNoise(s_u**2, s_e**2, 2, 3)
    predicted = sum(seed_noise.difference_variance(s_img**2, known, n_images, s_a, s_r))
    assert np.var(differences, ddof=1) == pytest.approx(predicted, rel=0.1)
    assert np.mean(differences) == pytest.approx(0.03, abs=0.002)


def test_the_report_names_the_shared_shift_its_intervals_include(tmp_path):
    from histo_gan.report import load_run, training_noise_sentence
    from tests.unit.test_report import rows, write_run

    runs = [
        load_run(write_run(tmp_path / f"r{s}", seed=s, train=["a"], rows=rows(values)))
        for s, values in enumerate([[0.4, 0.5, 0.6], [0.42, 0.52, 0.62]])  # shift 0.02
    ]
    sentence = training_noise_sentence(runs, ["aji"])
    # var of the seed means (0.5, 0.52) is 0.0002, no per-image rest: sd 0.0141
    assert "sd aji 0.0141 (pooled over 1 arm with two or more seeds" in sentence
    assert "too narrow by that shift" in training_noise_sentence(runs[:1], ["aji"])
    assert training_noise_sentence([], ["aji"]) == ""
