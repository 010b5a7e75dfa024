"""Train/val/test splits by image: random, by organ, leave-one-organ-out, fixed lists.

A split strategy is called with the image ids and organs of a source and returns a
:class:`Split`. Splits are made by whole image (patches of one image never straddle two
sets) and are saved with each run (``split.json``) so that a result can be traced back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from histo_gan.files import write_text_atomic
from histo_gan.readers import DataError

__all__ = [
    "FixedSplit",
    "LeaveOneOrganOut",
    "OrganSplit",
    "RandomSplit",
    "Split",
    "SplitStrategy",
]


@dataclass(frozen=True)
class Split:
    """Image ids of each set. Sets are disjoint; ``val`` and ``test`` may be empty."""

    train: list[str]
    val: list[str]
    test: list[str]
    strategy: str = ""

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for name in ("train", "val", "test"):
            for image_id in getattr(self, name):
                if image_id in seen:
                    raise ValueError(f"image {image_id!r} is in both {seen[image_id]} and {name}")
                seen[image_id] = name
        if not self.train:
            raise ValueError(f"split {self.strategy or ''} leaves no training images")

    def save(self, path: str | Path) -> None:
        """Write the split as JSON, atomically."""
        write_text_atomic(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Split:
        path = Path(path)
        try:
            content = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise DataError(f"{path}: cannot read split file ({error})") from error
        missing = {"train", "val", "test"} - set(content)
        if missing:
            raise DataError(f"{path}: split file lacks the keys {sorted(missing)}")
        return cls(
            list(content["train"]),
            list(content["val"]),
            list(content["test"]),
            content.get("strategy", f"file:{path}"),
        )


class SplitStrategy:
    """Base class: ``split(image_ids, organs) -> Split``."""

    def __call__(self, image_ids: Sequence[str], organs: Sequence[str]) -> Split:
        raise NotImplementedError


def _count(fraction: float, n: int, what: str) -> int:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {fraction}")
    return int(round(fraction * n)) if fraction > 0 else 0


class RandomSplit(SplitStrategy):
    """Random split by image with a fixed seed.

    ``val_fraction`` and ``test_fraction`` are rounded to whole images; a non-zero fraction
    gets at least one image when there are at least three images.
    """

    def __init__(self, val_fraction: float = 0.2, test_fraction: float = 0.0, seed: int = 0):
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed

    def __call__(self, image_ids: Sequence[str], organs: Sequence[str]) -> Split:
        n = len(image_ids)
        n_val = _count(self.val_fraction, n, "val_fraction")
        n_test = _count(self.test_fraction, n, "test_fraction")
        if n >= 3:
            n_val = max(n_val, 1) if self.val_fraction > 0 else 0
            n_test = max(n_test, 1) if self.test_fraction > 0 else 0
        if n_val + n_test >= n:
            raise ValueError(
                f"RandomSplit: {n} images cannot give {n_val} val and {n_test} test images "
                "and keep one for training"
            )
        order = np.random.default_rng(self.seed).permutation(n)
        ids = [image_ids[i] for i in order]
        return Split(
            train=sorted(ids[n_val + n_test :]),
            val=sorted(ids[:n_val]),
            test=sorted(ids[n_val : n_val + n_test]),
            strategy=f"random(val={self.val_fraction}, test={self.test_fraction}, seed={self.seed})",
        )


class OrganSplit(SplitStrategy):
    """Whole organs to val and test; every other organ trains."""

    def __init__(self, val_organs: Sequence[str] = (), test_organs: Sequence[str] = ()):
        self.val_organs, self.test_organs = list(val_organs), list(test_organs)

    def __call__(self, image_ids: Sequence[str], organs: Sequence[str]) -> Split:
        known = set(organs)
        unknown = [o for o in self.val_organs + self.test_organs if o not in known]
        if unknown:
            raise ValueError(f"OrganSplit: organs {unknown} not in the data (has {sorted(known)})")
        pick = lambda wanted: sorted(i for i, o in zip(image_ids, organs) if o in wanted)  # noqa: E731
        val, test = pick(set(self.val_organs)), pick(set(self.test_organs))
        held = set(self.val_organs) | set(self.test_organs)
        train = sorted(i for i, o in zip(image_ids, organs) if o not in held)
        return Split(train, val, test, f"organ(val={self.val_organs}, test={self.test_organs})")


class LeaveOneOrganOut(SplitStrategy):
    """Test on one organ; validate on a random fraction of the other organs' images."""

    def __init__(self, organ: str, val_fraction: float = 0.0, seed: int = 0):
        self.organ, self.val_fraction, self.seed = organ, val_fraction, seed

    def __call__(self, image_ids: Sequence[str], organs: Sequence[str]) -> Split:
        if self.organ not in set(organs):
            raise ValueError(f"LeaveOneOrganOut: organ {self.organ!r} not in {sorted(set(organs))}")
        test = sorted(i for i, o in zip(image_ids, organs) if o == self.organ)
        rest = [(i, o) for i, o in zip(image_ids, organs) if o != self.organ]
        inner = RandomSplit(self.val_fraction, 0.0, self.seed)(
            [i for i, _ in rest], [o for _, o in rest]
        )
        return Split(
            inner.train,
            inner.val,
            test,
            f"leave-one-organ-out({self.organ}, val={self.val_fraction})",
        )


class FixedSplit(SplitStrategy):
    """Fixed lists of image ids, given inline or as a ``split.json`` from an earlier run.

    With inline lists, ``train=None`` means "every image not in val or test".
    """

    def __init__(
        self,
        train: Sequence[str] | None = None,
        val: Sequence[str] = (),
        test: Sequence[str] = (),
        path: str | Path | None = None,
    ):
        self.train = None if train is None else list(train)
        self.val, self.test, self.path = list(val), list(test), path

    def __call__(self, image_ids: Sequence[str], organs: Sequence[str]) -> Split:
        if self.path is not None:
            split = Split.load(self.path)
            train, val, test = split.train, split.val, split.test
        else:
            held = set(self.val) | set(self.test)
            train = (
                self.train if self.train is not None else [i for i in image_ids if i not in held]
            )
            val, test = self.val, self.test
        known = set(image_ids)
        unknown = [i for i in [*train, *val, *test] if i not in known]
        if unknown:
            where = self.path or "FixedSplit"
            raise DataError(f"{where}: image ids not in the data: {unknown[:5]}")
        return Split(sorted(train), sorted(val), sorted(test), f"fixed({self.path or 'inline'})")
