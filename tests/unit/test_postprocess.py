from __future__ import annotations

import numpy as np
import pytest
import torch

from histo_gan.metrics.postprocess import InstancePostprocessor


def disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def three_class(interior, boundary):
    probabilities = np.zeros((3, *interior.shape), np.float32)
    probabilities[1][interior] = 1.0
    probabilities[2][boundary] = 1.0
    probabilities[0] = 1.0 - probabilities[1] - probabilities[2]
    return probabilities


def test_touching_nuclei_separated_by_a_boundary_ridge_come_out_as_two():
    shape = (20, 30)
    left, right = disc(shape, (10, 10), 6), disc(shape, (10, 20), 6)
    foreground = left | right
    ridge = foreground & (np.abs(np.mgrid[:20, :30][1] - 15) <= 0)
    interior = foreground & ~ridge
    label = InstancePostprocessor(min_area=5)(three_class(interior, ridge))
    assert label.dtype == np.int32 and label.max() == 2
    # every foreground pixel is assigned, the ridge included
    assert np.array_equal(label > 0, foreground)
    columns = np.mgrid[:20, :30][1]
    left_side, right_side = label[foreground & (columns < 15)], label[foreground & (columns > 15)]
    assert len(np.unique(left_side)) == 1 and len(np.unique(right_side)) == 1
    assert left_side[0] != right_side[0]
    # without the boundary channel (1-channel, plain components) they merge
    merged = InstancePostprocessor(marker_erosion=0, min_area=5)(
        foreground[None].astype(np.float32)
    )
    assert merged.max() == 1


def test_specks_are_removed_and_holes_are_filled():
    probabilities = np.zeros((1, 20, 20), np.float32)
    probabilities[0][disc((20, 20), (9, 9), 6)] = 0.9
    probabilities[0, 9, 9] = 0.1  # a hole
    probabilities[0, 18, 18] = 0.9  # a 1-px speck
    label = InstancePostprocessor(min_area=10, marker_erosion=1)(torch.from_numpy(probabilities))
    assert label.max() == 1
    assert label[9, 9] == 1 and label[18, 18] == 0


def test_erosion_markers_split_two_overlapping_discs_without_a_boundary_channel():
    shape = (24, 40)
    foreground = disc(shape, (12, 12), 8) | disc(shape, (12, 26), 8)  # joined by a neck
    label = InstancePostprocessor(marker_erosion=4, min_area=5)(foreground[None].astype(np.float32))
    assert label.max() == 2 and np.array_equal(label > 0, foreground)


def test_two_channel_convention_and_bad_shapes():
    fg = disc((16, 16), (8, 8), 5).astype(np.float32)
    boundary = np.zeros_like(fg)
    label = InstancePostprocessor(min_area=3)(np.stack([fg, boundary]))
    assert label.max() == 1 and label[8, 8] == 1
    with pytest.raises(ValueError, match=r"shape \(C, H, W\) with C in 1..3"):
        InstancePostprocessor()(np.zeros((4, 8, 8)))
