"""The committed split files in experiments/splits: regenerable, stratified, nested, readable."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter

import pytest

from histo_gan.data.organs import OrganTable
from histo_gan.data.splits import FixedSplit


@pytest.fixture(scope="module")
def splits_dir(repo_root):
    return repo_root / "experiments" / "splits"


@pytest.fixture(scope="module")
def make_splits(splits_dir):
    spec = importlib.util.spec_from_file_location("make_splits", splits_dir / "make_splits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(splits_dir, name):
    return json.loads((splits_dir / name).read_text())


def test_files_are_what_the_script_writes(splits_dir, make_splits, tmp_path):
    main = _load(splits_dir, "main.json")
    ids = sorted(main["train"] + main["val"] + main["test"])
    assert len(ids) == 30
    table = OrganTable()
    made = make_splits.make_splits(ids, [table.organ_of(i) for i in ids], seed=0)
    committed = sorted(p.relative_to(splits_dir).as_posix() for p in splits_dir.rglob("*.json"))
    assert sorted(made) == committed
    for name, split in made.items():
        split.save(tmp_path / name)
        assert (tmp_path / name).read_text() == (splits_dir / name).read_text(), name


def test_main_split_is_stratified_and_budgets_are_nested_and_organ_diverse(splits_dir):
    organ = OrganTable().organ_of
    main = _load(splits_dir, "main.json")
    assert Counter(organ(i) for i in main["test"]) == {
        "breast": 2,
        "kidney": 2,
        "liver": 2,
        "prostate": 2,
        "bladder": 1,
        "colon": 1,
        "stomach": 1,
    }
    assert Counter(organ(i) for i in main["val"]) == {
        o: 1 for o in ("breast", "kidney", "liver", "prostate")
    }
    previous: set[str] = set()
    for budget in (2, 4, 8):
        split = _load(splits_dir, f"budget_{budget}.json")
        train = set(split["train"])
        assert len(train) == budget and previous <= train <= set(main["train"])
        assert len({organ(i) for i in train}) == min(budget, 7)
        assert (split["val"], split["test"]) == (main["val"], main["test"])
        previous = train
    assert _load(splits_dir, "budget_all.json")["train"] == main["train"]


def test_leave_one_organ_out_folds_cover_the_main_test_set_once(splits_dir):
    organ = OrganTable().organ_of
    main = _load(splits_dir, "main.json")
    covered = []
    for path in sorted((splits_dir / "loo").glob("*.json")):
        fold = json.loads(path.read_text())
        assert {organ(i) for i in fold["test"]} == {path.stem}
        assert path.stem not in {organ(i) for i in fold["train"] + fold["val"]}
        assert set(fold["train"]) == {i for i in main["train"] if organ(i) != path.stem}
        covered += fold["test"]
    assert sorted(covered) == sorted(main["test"])


@pytest.mark.real_data
def test_fixed_split_reads_every_file_against_the_shared_label_maps(splits_dir, shared_data):
    from histo_gan.data import LabelMapFolder

    source = LabelMapFolder(shared_data / "images", shared_data / "instance_masks")
    for path in sorted(splits_dir.rglob("*.json")):
        split = FixedSplit(path=path)(source.image_ids, source.organs)
        assert split.train == _load(splits_dir, path.relative_to(splits_dir))["train"]
