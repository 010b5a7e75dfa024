from __future__ import annotations

import pytest
import torch

from histo_gan.inference.tiling import SlidingWindow, tile_starts


def test_tile_starts_cover_the_image_and_end_at_the_border():
    assert tile_starts(100, 32, 24) == [0, 24, 48, 68]
    assert tile_starts(32, 32, 24) == [0]
    with pytest.raises(ValueError, match="smaller than the tile"):
        tile_starts(20, 32, 24)


@pytest.mark.parametrize("height,width", [(100, 70), (64, 64), (20, 45)])
@pytest.mark.parametrize("blend", ["gaussian", "uniform"])
def test_identity_prediction_stitches_back_exactly(height, width, blend):
    image = torch.rand(2, 3, height, width)
    window = SlidingWindow(tile_size=32, overlap=0.25, batch_size=3, blend=blend)
    out = window(lambda tiles: tiles * 2.0, image)
    assert out.shape == image.shape
    torch.testing.assert_close(out, image * 2.0)


def test_overlaps_are_averaged_with_the_window_weights():
    # predict() returns each tile's index as a constant: with uniform blending, a pixel covered
    # by tiles i and j gets (i + j) / 2.
    calls = []

    def predict(tiles):
        first = sum(len(c) for c in calls)
        calls.append(tiles)
        values = torch.arange(first, first + len(tiles), dtype=torch.float32)
        return values[:, None, None, None].expand(-1, 1, *tiles.shape[-2:])

    window = SlidingWindow(tile_size=4, overlap=0.5, batch_size=10, blend="uniform")
    out = window(predict, torch.zeros(1, 1, 4, 6))  # tiles at x = 0, 2 -> indices 0, 1
    expected = torch.tensor([0.0, 0.0, 0.5, 0.5, 1.0, 1.0]).expand(4, 6)
    torch.testing.assert_close(out[0, 0], expected)
