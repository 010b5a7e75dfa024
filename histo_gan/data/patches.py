"""Torch datasets: random training patches and whole images for evaluation.

Training patches are drawn by *key*: each item index handed out by :class:`EpochKeySampler`
is a 63-bit key that seeds everything about that patch (which image, where, which
augmentation, which reference, unpaired real patch and real reference). The same seed therefore
gives the same patches whatever the number of workers, and each epoch gets fresh keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from histo_gan.data.augment import Augmentation, NoAugment
from histo_gan.data.sources import ImageSource
from histo_gan.types import LabeledImage

__all__ = [
    "EpochKeySampler",
    "KeyShardSampler",
    "PaddedShardSampler",
    "TrainPatchDataset",
    "WholeImageDataset",
    "image_to_tensor",
]

ReferenceMode = Literal["none", "same_image", "same_organ"]


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """``uint8`` ``(H, W, 3)`` -> ``float32`` ``(3, H, W)`` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


class EpochKeySampler(Sampler[int]):
    """Yields ``length`` random 63-bit keys per epoch, derived from ``(seed, epoch)``.

    Every call to ``__iter__`` starts a new epoch; ``set_epoch`` (called by Lightning when it
    resumes) jumps to a given epoch.
    """

    def __init__(self, length: int, seed: int = 0) -> None:
        if length <= 0:
            raise ValueError(f"patches per epoch must be positive, got {length}")
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        yield from (int(k) for k in rng.integers(0, 2**63 - 1, size=self.length))


class KeyShardSampler(DistributedSampler):
    """One process's share of the keys of an :class:`EpochKeySampler` under DDP.

    Every process draws the same epoch keys and keeps those at positions ``rank``,
    ``rank + world_size``, ...: no key goes to two processes, and together they train on the
    keys a single process draws (all of them when ``patches_per_epoch`` is a multiple of
    ``world_size``; the last ``patches_per_epoch % world_size`` are left out, so that every
    process has the same number). Lightning's own wrapper would instead pad the shards with
    repeated keys.
    """

    def __init__(
        self, keys: EpochKeySampler, num_replicas: int | None = None, rank: int | None = None
    ) -> None:
        super().__init__(keys, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.keys = keys
        self.num_samples = len(keys) // self.num_replicas
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.keys.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        keys = list(self.keys)
        return iter(keys[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples


def _random_crop(
    rng: np.random.Generator, item: LabeledImage, size: int, where: str
) -> tuple[np.ndarray, np.ndarray | None]:
    height, width = item.shape
    if height < size or width < size:
        raise ValueError(
            f"{item.source or item.image_id}: image is {width}x{height}, smaller than the "
            f"{where} size {size}"
        )
    y = int(rng.integers(0, height - size + 1))
    x = int(rng.integers(0, width - size + 1))
    label = None if item.label is None else item.label[y : y + size, x : x + size]
    return item.image[y : y + size, x : x + size], label


class _ReferencePool:
    """Real images to draw style references from, indexed by image id and by organ."""

    def __init__(self, images: Sequence[LabeledImage]) -> None:
        self.images = list(images)
        self.by_id = {item.image_id: i for i, item in enumerate(self.images)}
        self.by_organ: dict[str, list[int]] = {}
        for i, item in enumerate(self.images):
            self.by_organ.setdefault(item.organ, []).append(i)

    def crop_for(
        self, rng: np.random.Generator, item: LabeledImage, mode: ReferenceMode, size: int
    ) -> np.ndarray:
        """A random ``size`` crop of the image ``item`` is (``same_image``; for a synthetic item,
        the first of its ``meta["source_ids"]`` found here), else of an image of its organ, else
        of any image."""
        candidates: list[int] = []
        if mode == "same_image":
            sources = [item.image_id, *item.meta.get("source_ids", [])]
            candidates = [self.by_id[s] for s in sources if s in self.by_id][:1]
        if not candidates:  # same_organ, or the fallback when the image is not in the pool
            candidates = self.by_organ.get(item.organ, [])
        if not candidates:
            candidates = list(range(len(self.images)))
        chosen = self.images[candidates[int(rng.integers(len(candidates)))]]
        return _random_crop(rng, chosen, size, "reference patch")[0]


class TrainPatchDataset(Dataset):
    """Random patches of real and synthetic images, augmented, as :class:`~histo_gan.types.TrainBatch` items.

    Args:
        real: labeled real training images (already loaded); may be empty when
            ``synthetic_ratio`` is 1.
        synthetic: synthetic dataset (loaded on demand), or ``None``.
        synthetic_ratio: probability that a patch comes from ``synthetic``.
        patch_size: side of the square patches.
        augmentation: applied to image and label map together.
        context: extra border (pixels) cropped around a patch before augmentation and removed
            after it, so elastic deformation has real pixels to pull from; shrunk where the
            image is too small.
        reference: add a ``reference`` real patch from the same image or the same organ as
            the item (drawn from ``real``, or from ``real_domain`` when ``real`` is empty).
        real_domain: images of the unpaired real stream; ``None`` adds no ``real`` key. With
            ``reference`` on as well, each item also carries ``real_reference``: a second real
            patch from the same image (or organ) as ``real``, drawn from ``real_domain``, so
            that ``<real, real_reference>`` is a real pair for a pair discriminator.
        length: patches per epoch.

    References are plain random crops (not augmented); ``image`` and ``real`` are augmented.
    """

    def __init__(
        self,
        real: Sequence[LabeledImage],
        synthetic: ImageSource | None,
        synthetic_ratio: float,
        patch_size: int,
        augmentation: Augmentation | None = None,
        context: int = 16,
        reference: ReferenceMode = "none",
        real_domain: Sequence[LabeledImage] | None = None,
        length: int = 512,
    ) -> None:
        self.length = length
        if not 0.0 <= synthetic_ratio <= 1.0:
            raise ValueError(f"synthetic_ratio must be in [0, 1], got {synthetic_ratio}")
        if synthetic_ratio > 0 and (synthetic is None or len(synthetic) == 0):
            raise ValueError("synthetic_ratio > 0 needs a non-empty synthetic dataset")
        if synthetic_ratio < 1 and not real:
            raise ValueError("synthetic_ratio < 1 needs labeled real training images")
        if reference != "none" and not (real or real_domain):
            raise ValueError(f"reference={reference!r} needs real images to draw references from")
        self.real, self.synthetic = list(real), synthetic
        self.synthetic_ratio, self.patch_size = synthetic_ratio, patch_size
        self.augmentation = augmentation or NoAugment()
        self.context, self.reference = context, reference
        self.real_domain = None if real_domain is None else list(real_domain)
        self.references = _ReferencePool(self.real or self.real_domain or [])
        self.real_references = _ReferencePool(self.real_domain or [])

    def __len__(self) -> int:
        """Patches per epoch; items are addressed by key, not by position (see the sampler)."""
        return self.length

    def _draw_item(self, rng: np.random.Generator) -> LabeledImage:
        if rng.random() < self.synthetic_ratio:
            assert self.synthetic is not None
            return self.synthetic.load(int(rng.integers(len(self.synthetic))))
        return self.real[int(rng.integers(len(self.real)))]

    def _augmented_patch(
        self, rng: np.random.Generator, item: LabeledImage
    ) -> tuple[np.ndarray, np.ndarray]:
        height, width = item.shape
        spare = min(height, width) - self.patch_size
        context = max(0, min(self.context, spare // 2))
        size = self.patch_size + 2 * context
        image, label = _random_crop(rng, item, size, "patch")
        if label is None:
            label = np.zeros(image.shape[:2], dtype=np.int32)
        image, label = self.augmentation(image, label, int(rng.integers(2**32)))
        inner = slice(context, context + self.patch_size)
        return image[inner, inner], label[inner, inner]

    def __getitem__(self, key: int) -> dict:
        rng = np.random.default_rng(int(key))
        item = self._draw_item(rng)
        image, label = self._augmented_patch(rng, item)
        sample = {
            "image": image_to_tensor(image),
            "label": torch.from_numpy(label.astype(np.int32, copy=False)),
            "weight": torch.tensor(float(item.weight), dtype=torch.float32),
            "is_synthetic": torch.tensor(bool(item.is_synthetic)),
            "image_id": item.image_id,
            "organ": item.organ,
        }
        if self.reference != "none":
            reference = self.references.crop_for(rng, item, self.reference, self.patch_size)
            sample["reference"] = image_to_tensor(reference)
        if self.real_domain is not None:
            other = self.real_domain[int(rng.integers(len(self.real_domain)))]
            real_image, _ = self._augmented_patch(rng, other)
            sample["real"] = image_to_tensor(real_image)
            if self.reference != "none":
                # Drawn last so that every other key keeps its patches when this one is added.
                pair = self.real_references.crop_for(rng, other, self.reference, self.patch_size)
                sample["real_reference"] = image_to_tensor(pair)
        return sample


class WholeImageDataset(Dataset):
    """Whole images for validation, test and prediction (one per batch item).

    Index ``i`` in ``[len, 2 * len)`` returns image ``i - len`` marked ``is_padding``: the
    distributed sampler uses such items to give every process the same number of batches
    (so none waits forever in a collective) while the metrics skip them.
    """

    def __init__(self, images: Sequence[LabeledImage]) -> None:
        self.images = list(images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        padding = index >= len(self.images)
        item = self.images[index % len(self.images)]
        sample = {
            "image": image_to_tensor(item.image),
            "image_id": item.image_id,
            "organ": item.organ,
            "is_padding": torch.tensor(padding),
        }
        if item.label is not None:
            sample["label"] = torch.from_numpy(item.label)
        return sample


class PaddedShardSampler(DistributedSampler):
    """Deal whole images to processes round-robin, each image exactly once.

    Shards are padded to equal length with items flagged ``is_padding`` (see
    :class:`WholeImageDataset`) instead of repeating real images, which would be scored twice.
    """

    def __init__(
        self, dataset: WholeImageDataset, num_replicas: int | None = None, rank: int | None = None
    ):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        n = len(dataset)
        self.num_samples = -(-n // self.num_replicas) if n else 0
        self.total_size = self.num_samples * self.num_replicas
        self._n = n

    def __iter__(self):
        for k in range(self.num_samples):
            index = self.rank + k * self.num_replicas
            yield index if index < self._n else self._n + index % self._n

    def __len__(self) -> int:
        return self.num_samples
