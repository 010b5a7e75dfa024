from __future__ import annotations

import pytest

from histo_gan.data.readers import DataError
from histo_gan.data.splits import FixedSplit, LeaveOneOrganOut, OrganSplit, RandomSplit, Split

IDS = [f"img{i:02d}" for i in range(10)]
ORGANS = ["breast"] * 4 + ["kidney"] * 3 + ["liver"] * 2 + ["colon"]


def test_random_split_is_disjoint_complete_and_seeded():
    a = RandomSplit(0.2, 0.1, seed=1)(IDS, ORGANS)
    assert (len(a.train), len(a.val), len(a.test)) == (7, 2, 1)
    assert sorted(a.train + a.val + a.test) == IDS
    assert a == RandomSplit(0.2, 0.1, seed=1)(IDS, ORGANS)
    assert a != RandomSplit(0.2, 0.1, seed=2)(IDS, ORGANS)


def test_random_split_refuses_to_leave_no_training_images():
    with pytest.raises(ValueError, match="keep one for training"):
        RandomSplit(0.5, 0.5)(IDS[:2], ORGANS[:2])
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        RandomSplit(1.5)(IDS, ORGANS)


def test_organ_split_and_leave_one_organ_out():
    s = OrganSplit(val_organs=["liver"], test_organs=["colon"])(IDS, ORGANS)
    assert s.val == ["img07", "img08"] and s.test == ["img09"] and len(s.train) == 7
    loo = LeaveOneOrganOut("kidney", val_fraction=0.2, seed=0)(IDS, ORGANS)
    assert loo.test == ["img04", "img05", "img06"]
    assert len(loo.val) == 1 and not set(loo.val) & set(loo.test)
    with pytest.raises(ValueError, match="'lung' not in"):
        LeaveOneOrganOut("lung")(IDS, ORGANS)


def test_fixed_split_inline_and_from_a_saved_file(tmp_path):
    s = FixedSplit(val=["img01"], test=["img02"])(IDS, ORGANS)
    assert s.val == ["img01"] and "img01" not in s.train and len(s.train) == 8
    s.save(tmp_path / "run" / "split.json")
    again = FixedSplit(path=tmp_path / "run" / "split.json")(IDS, ORGANS)
    assert (again.train, again.val, again.test) == (s.train, s.val, s.test)
    with pytest.raises(DataError, match="not in the data.*nope"):
        FixedSplit(val=["nope"])(IDS, ORGANS)


def test_split_rejects_overlap():
    with pytest.raises(ValueError, match="both train and val"):
        Split(["a", "b"], ["b"], [])
