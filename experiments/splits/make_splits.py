"""Write the committed MoNuSeg split files (see README.md beside this script).

    python experiments/splits/make_splits.py [--images ../shared/data/monuseg/train/images]
                                             [--out experiments/splits] [--seed 0]

Every file is a ``split.json`` (``train``/``val``/``test`` image ids, by whole image) that
``histo_gan.data.FixedSplit(path=...)`` reads. Organs come from the project's organ table
(``histo_gan/data/monuseg_organs.csv``). Only the image file names are read, no pixels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from histo_gan.data.organs import OrganTable
from histo_gan.data.readers import IMAGE_SUFFIXES
from histo_gan.data.splits import FixedSplit, Split

TEST_FRACTION = 0.3  # of each organ's images; at least one test image per organ
VAL_FRACTION = 0.15  # of each organ's images, rounded (organs of 2 images get none)
BUDGETS = (2, 4, 8)  # label budgets besides "all"


def stratified_split(ids: list[str], organs: list[str], seed: int) -> Split:
    """Per organ: a seeded shuffle, then ``max(1, round(0.3 n))`` test and ``round(0.15 n)``
    validation images; the rest train (at least one per organ)."""
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for organ in sorted(set(organs)):
        members = sorted(i for i, o in zip(ids, organs) if o == organ)
        members = [members[k] for k in rng.permutation(len(members))]
        n = len(members)
        n_test = max(1, int(round(TEST_FRACTION * n))) if n >= 2 else 0
        n_val = min(int(round(VAL_FRACTION * n)), n - n_test - 1)
        test += members[:n_test]
        val += members[n_test : n_test + n_val]
        train += members[n_test + n_val :]
    strategy = f"stratified by organ (test {TEST_FRACTION}, val {VAL_FRACTION}, seed {seed})"
    return Split(sorted(train), sorted(val), sorted(test), strategy)


def organ_round_robin(ids: list[str], organs: list[str], seed: int) -> list[str]:
    """Training images ordered so that every prefix covers as many organs as possible.

    Organs are visited in a seeded order, one image each per round (images of an organ in a
    seeded order too); budget ``k`` is the first ``k`` images, so budgets are nested.
    """
    rng = np.random.default_rng(seed)
    names = sorted(set(organs))
    names = [names[k] for k in rng.permutation(len(names))]
    queues = {}
    for organ in names:
        members = sorted(i for i, o in zip(ids, organs) if o == organ)
        queues[organ] = [members[k] for k in rng.permutation(len(members))]
    order: list[str] = []
    while any(queues.values()):
        for organ in names:
            if queues[organ]:
                order.append(queues[organ].pop(0))
    return order


def make_splits(ids: list[str], organs: list[str], seed: int) -> dict[str, Split]:
    """``{relative file name: split}`` of every committed file."""
    organ_of = dict(zip(ids, organs))
    main = stratified_split(ids, organs, seed)
    files = {"main.json": main}
    order = organ_round_robin(main.train, [organ_of[i] for i in main.train], seed)
    for budget in (*BUDGETS, len(order)):
        name = f"budget_{budget if budget < len(order) else 'all'}.json"
        strategy = f"first {budget} training images of main.json, organ round-robin (seed {seed})"
        files[name] = Split(sorted(order[:budget]), main.val, main.test, strategy)
    for organ in sorted(set(organs)):
        files[f"loo/{organ}.json"] = Split(
            [i for i in main.train if organ_of[i] != organ],
            [i for i in main.val if organ_of[i] != organ],
            [i for i in main.test if organ_of[i] == organ],
            f"main.json without {organ} in train/val; test = main's {organ} test images",
        )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=Path("../shared/data/monuseg/train/images"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ids = sorted(p.stem for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not ids:
        raise SystemExit(f"{args.images}: no images")
    table = OrganTable()
    organs = [table.organ_of(i) for i in ids]
    for name, split in make_splits(ids, organs, args.seed).items():
        split.save(args.out / name)
        # The check the configs rely on: FixedSplit reads the file back unchanged.
        read = FixedSplit(path=args.out / name)(ids, organs)
        assert (read.train, read.val, read.test) == (split.train, split.val, split.test), name
        print(
            f"{name:24s} train {len(split.train):2d}  val {len(split.val)}  test {len(split.test)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
