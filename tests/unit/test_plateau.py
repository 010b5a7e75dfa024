"""The plateau budget rule against curves worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from histo_gan.metrics.plateau import mean_curve, plateau_budget, tail_steadiness

STEPS = [100 * k for k in range(1, 13)]
RISE_THEN_FLAT = [0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]


def test_unsmoothed_budget_is_the_first_step_within_tolerance_of_the_plateau():
    result = plateau_budget(STEPS, RISE_THEN_FLAT, tolerance=0.01, window=1)
    # tail: last round(12 / 3) = 4 values, all 0.6 -> plateau 0.6; first value >= 0.59: 0.6 at 700
    assert result.plateau == pytest.approx(0.6)
    assert result.budget == 700
    assert result.flattened and result.rise == pytest.approx(0.0, abs=1e-12)
    assert result.at_plateau(700) and not result.at_plateau(699)


def test_smoothing_delays_the_budget_by_the_window():
    result = plateau_budget(STEPS, RISE_THEN_FLAT, tolerance=0.01, window=3)
    # trailing means: ..., at 800 (0.55+0.6+0.6)/3 = 0.5833, at 900 0.6 -> budget 900
    assert result.smoothed[7] == pytest.approx((0.55 + 0.6 + 0.6) / 3)
    assert result.plateau == pytest.approx(0.6)
    assert result.budget == 900


def test_a_curve_still_rising_has_not_flattened():
    rising = [0.05 * k for k in range(1, 13)]
    result = plateau_budget(STEPS, rising, tolerance=0.01, window=1)
    # tail 0.45, 0.5, 0.55, 0.6: the line rises 0.15 over it
    assert result.rise == pytest.approx(0.15)
    assert not result.flattened and not result.at_plateau(10_000)


def test_noise_around_a_flat_tail_is_not_a_trend():
    noisy = [0.1, 0.3, 0.5, 0.58, 0.62, 0.58, 0.62, 0.58, 0.62, 0.58, 0.62, 0.6]
    result = plateau_budget(STEPS, noisy, tolerance=0.01, window=1)
    # tail 0.62, 0.58, 0.62, 0.60: mean 0.605, least-squares slope -0.002 per 100 steps
    assert result.plateau == pytest.approx(0.605)
    assert result.rise == pytest.approx(-0.006)
    assert result.flattened
    assert result.budget == 500  # the first value >= 0.595 (0.58 at 400 is not)


def test_the_mean_curve_keeps_the_steps_every_seed_has():
    steps, values = mean_curve([{100: 0.2, 200: 0.4, 300: 0.5}, {100: 0.4, 200: 0.6}])
    assert steps == [100, 200]
    assert values == pytest.approx([0.3, 0.5])


@pytest.mark.parametrize(
    ("steps", "values", "message"),
    [([1, 2, 3], [0.1, 0.2, 0.3], "at least 6"), ([1, 2, 2, 3, 4, 5], [0.1] * 6, "ascending")],
)
def test_bad_curves_are_refused(steps, values, message):
    with pytest.raises(ValueError, match=message):
        plateau_budget(steps, values, window=3)


def test_a_rise_within_two_standard_errors_of_the_noise_is_not_a_trend():
    # tail 700, 800, 900: spread of the steps 2 x 100^2, so the rise over 200 steps has a
    # standard error of noise x 200 / sqrt(20000) = noise x 1.41421; the raw rise is 0.1
    steps = [100 * (k + 1) for k in range(9)]
    values = [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]
    exact = plateau_budget(steps, values, tolerance=0.01)
    quiet = plateau_budget(steps, values, tolerance=0.01, noise_sd=0.03)
    loud = plateau_budget(steps, values, tolerance=0.01, noise_sd=0.05)
    assert exact.rise_limit == 0.01 and not exact.flattened
    assert abs(quiet.rise_limit - 2 * 0.03 * 1.414214) < 1e-6 and not quiet.flattened
    assert abs(loud.rise_limit - 2 * 0.05 * 1.414214) < 1e-6 and loud.flattened


def test_a_tail_settles_by_the_tolerance_or_by_the_measures_noise():
    # sd of the last three (0.5, 0.56, 0.5) = 0.034641; 95% chi-square limit of three values
    # of noise 0.03: 0.03 x sqrt(5.991465 / 2) = 0.051925
    values = [0.7, 0.6, 0.55, 0.5, 0.56, 0.5]
    strict = tail_steadiness(values, tolerance=0.02)
    noisy = tail_steadiness(values, tolerance=0.02, noise_sd=0.03)
    assert abs(strict.tail_sd - 0.034641) < 1e-6 and not strict.settled
    assert abs(noisy.limit - 0.051925) < 1e-6 and noisy.settled and noisy.by_noise
    assert tail_steadiness(values, tolerance=0.05).settled
    assert not tail_steadiness(values, tolerance=0.05).by_noise


def test_pure_noise_tails_settle_at_the_tests_level():
    """Tails of 4 evaluations of an unchanged model with noise 0.03: about 95% settle."""
    rng = np.random.default_rng(0)
    tails = 0.6 + 0.03 * rng.standard_normal((4000, 4))
    share = np.mean([tail_steadiness(t, tolerance=0.0, noise_sd=0.03).settled for t in tails])
    assert 0.94 <= share <= 0.96


def test_negative_noise_is_refused():
    with pytest.raises(ValueError, match="noise_sd"):
        tail_steadiness([0.1, 0.2, 0.3], tolerance=0.01, noise_sd=-1.0)
    with pytest.raises(ValueError, match="noise_sd"):
        plateau_budget(list(range(1, 7)), [0.1] * 6, noise_sd=float("nan"))
