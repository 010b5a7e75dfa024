"""The plateau budget rule against curves worked out by hand."""

from __future__ import annotations

import pytest

from histo_gan.metrics.plateau import mean_curve, plateau_budget

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
