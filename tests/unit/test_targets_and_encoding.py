from __future__ import annotations

import pytest
import torch

from histo_gan.losses.segmentation import CrossEntropyDiceLoss
from histo_gan.training.mask_encoding import HE_PALETTE, MaskEncoding
from histo_gan.training.targets import instance_boundaries, three_class_target


def two_touching_squares():
    label = torch.zeros(1, 7, 8, dtype=torch.int32)
    label[0, 1:5, 1:4] = 3
    label[0, 1:5, 4:7] = 9
    return label


def test_three_class_target_by_hand():
    target = three_class_target(two_touching_squares(), boundary_width=1)[0]
    expected = torch.tensor(
        [
            [0, 0, 0, 0, 0, 0, 0, 0],
            [0, 2, 2, 2, 2, 2, 2, 0],
            [0, 2, 1, 2, 2, 1, 2, 0],
            [0, 2, 1, 2, 2, 1, 2, 0],
            [0, 2, 2, 2, 2, 2, 2, 0],
            [0, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0],
        ]
    )
    assert torch.equal(target, expected)


def test_boundary_width_grows_inwards_only_and_image_border_is_not_a_boundary():
    label = torch.zeros(1, 9, 9, dtype=torch.int32)
    label[0, :, :] = 1  # one object filling the image: no neighbour differs
    assert not instance_boundaries(label).any()
    label[0, 0, :] = 0
    wide = instance_boundaries(label, width=3)[0]
    assert wide[1:4].all() and not wide[4:].any() and not wide[0].any()
    with pytest.raises(ValueError, match="width must be >= 1"):
        instance_boundaries(label, width=0)


def test_mask_encoding_round_trip():
    encoding = MaskEncoding(boundary_width=1)
    encoded = encoding.encode(two_touching_squares())
    assert encoded.shape == (1, 3, 7, 8) and set(encoded.unique().tolist()) == {-1.0, 1.0}
    probabilities = encoding.to_probabilities(encoded)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(1, 7, 8))
    classes = probabilities.argmax(1)
    assert torch.equal(classes, three_class_target(two_touching_squares(), 1))
    single = MaskEncoding(None)
    assert single.encode(two_touching_squares()).shape == (1, 1, 7, 8)
    assert torch.equal(
        single.to_probabilities(single.encode(two_touching_squares()))[:, 0] > 0.5,
        two_touching_squares() > 0,
    )


def test_palette_encoding_draws_each_class_in_its_colour_and_reads_outputs_by_nearest_colour():
    encoding = MaskEncoding(boundary_width=1, palette=HE_PALETTE)
    label = two_touching_squares()
    classes = three_class_target(label, 1)
    encoded = encoding.encode(label)
    assert encoded.shape == (1, 3, 7, 8)
    # The picture is the palette itself: pixel (2, 2) is interior, (1, 1) boundary, (0, 0) background.
    for (y, x), colour in (
        ((0, 0), HE_PALETTE[0]),
        ((2, 2), HE_PALETTE[1]),
        ((1, 1), HE_PALETTE[2]),
    ):
        torch.testing.assert_close(encoding.to_rgb(encoded)[0, :, y, x], torch.tensor(colour))
    assert torch.equal(encoding.to_probabilities(encoded).argmax(1), classes)
    # Nuclei are darker than the background, as in H&E.
    assert sum(HE_PALETTE[1]) < sum(HE_PALETTE[0]) and sum(HE_PALETTE[2]) < sum(HE_PALETTE[0])
    # An output halfway between background and interior colours is an even split of the two.
    halfway = (encoding.palette[0] + encoding.palette[1]) / 2
    p = encoding.to_probabilities(halfway.view(1, 3, 1, 1))[0, :, 0, 0]
    torch.testing.assert_close(p[0], p[1])
    assert p[0] > p[2]
    torch.testing.assert_close(encoding.classes_to_rgb(classes), encoding.to_rgb(encoded))
    two = MaskEncoding(None, palette=HE_PALETTE[:2])
    assert two.channels == 3
    foreground = two.to_probabilities(two.encode(label))
    assert foreground.shape == (1, 1, 7, 8) and torch.equal(foreground[:, 0] > 0.5, label > 0)
    with pytest.raises(ValueError, match="expected 3 RGB colours"):
        MaskEncoding(1, palette=HE_PALETTE[:2])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        MaskEncoding(1, palette=[[0, 0, 2], [0, 0, 0], [1, 1, 1]])


def test_loss_matches_hand_computation_and_weights_shift_the_mix():
    loss = CrossEntropyDiceLoss(ce_weight=1.0, dice_weight=1.0, smooth=0.0)
    logits = torch.zeros(2, 2, 1, 2)  # uniform prediction: p = 0.5 everywhere
    target = torch.tensor([[[1, 1]], [[0, 1]]])
    # CE = ln 2 for every pixel. Dice of class 1: sample 0: 2*1/(1+2) = 2/3; sample 1: 2*0.5/(1+1) = 0.5.
    per_sample = loss.per_sample(logits, target)
    ln2 = torch.log(torch.tensor(2.0))
    torch.testing.assert_close(per_sample, torch.stack([ln2 + 1 / 3, ln2 + 0.5]))
    weighted = loss(logits, target, torch.tensor([3.0, 1.0]))
    torch.testing.assert_close(weighted, (3 * per_sample[0] + per_sample[1]) / 4)
