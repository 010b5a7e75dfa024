"""``HistoDataModule``: the one DataModule every histo-gan method trains and evaluates with.

- ``source`` (labeled real images) is split by image into train/val/test by ``split``; explicit
  ``val_source``/``test_source`` replace the split's val/test sets.
- Training draws ``patches_per_epoch`` random patches per epoch from the training images and,
  with probability ``synthetic_ratio``, from a ``synthetic`` dataset; both are augmented with
  image and label map together.
- ``reference`` adds a real style-reference patch from the same image or organ (Hou refiners);
  ``unpaired_real`` adds an unpaired real-tissue patch (CycleGAN's target domain), drawn from
  ``real_domain`` or, when that is not given, from the training images. With both on, each item
  also carries ``real_reference``, a second real patch from the same image or organ (by the same
  ``reference`` mode) as ``real``: ``<real, real_reference>`` is the real pair <S', S> of the
  Hou refiners' pair discriminator, ``<refined image, reference>`` its fake pair <X, S>.
- Validation and test batches are whole images (batch size 1); modules tile them with
  :class:`~histo_gan.inference.SlidingWindow` and stitch the predictions back.
- The split is saved as ``split.json`` in the run's log directory.
- Under DDP each process trains on its own share of each epoch's patch keys
  (:class:`~histo_gan.data.patches.KeyShardSampler`) and scores its own share of the whole
  images, each exactly once (:class:`~histo_gan.data.patches.PaddedShardSampler`).
- A run resumed from a checkpoint written inside an epoch goes on with that epoch's remaining
  patches (:class:`ResumableDataLoader`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from histo_gan.data.augment import Augmentation, HistoAugment
from histo_gan.data.patches import (
    EpochKeySampler,
    KeyShardSampler,
    PaddedShardSampler,
    ReferenceMode,
    TrainPatchDataset,
    WholeImageDataset,
)
from histo_gan.data.readers import SettingError
from histo_gan.data.sources import BundledSample, ImageSource
from histo_gan.data.splits import RandomSplit, Split, SplitStrategy
from histo_gan.threads import limit_threads, single_threaded_worker, threads_limited
from histo_gan.types import LabeledImage

__all__ = ["HistoDataModule"]

log = logging.getLogger(__name__)


class ForkSafeDataLoader(DataLoader):
    """A DataLoader whose worker processes start while this process runs single-threaded.

    OpenCV's thread pool does not survive a fork: a forked worker that sets its thread count
    (:func:`~histo_gan.threads.single_threaded_worker`) would wait forever on threads that only
    exist in the parent. Starting the workers inside :func:`~histo_gan.threads.threads_limited`
    gives them a pool of one and the parent its budget back afterwards.
    """

    def _get_iterator(self):
        if self.num_workers == 0:
            return super()._get_iterator()
        with threads_limited(1):
            return super()._get_iterator()


class ResumableDataLoader(ForkSafeDataLoader):
    """The training loader: a run resumed inside an epoch trains on the rest of that epoch.

    Lightning saves :meth:`state_dict` with each checkpoint (a loader with ``state_dict`` and
    ``load_state_dict`` counts as resumable) and hands it to :meth:`load_state_dict` when a run
    resumes: the epoch and how many batches this loader had yielded in it. The first iteration
    after a load then passes over that many batches of the same epoch, so a run stopped inside
    an epoch (the chunk timer, a kill after a mid-epoch checkpoint) goes on with the patches an
    uninterrupted run would have trained on next (each patch is a function of its key,
    :class:`~histo_gan.data.patches.EpochKeySampler`); without it Lightning restarts the epoch
    from its first batch, trains those again and never sees the epoch's last ones. A state of
    another epoch (one that ended) skips nothing.

    The iterator is created at the first batch, not at ``iter()``: Lightning calls ``iter()``
    on a resumed run before it sets the sampler's epoch, and worker processes would draw their
    indices from the sampler at once.
    """

    _resume: dict | None = None
    _epoch: int | None = None
    _yielded: int = 0

    def state_dict(self) -> dict:
        """``{"epoch": sampler epoch of the current iteration, "batches": yielded in it}``."""
        return {"epoch": self._epoch, "batches": self._yielded}

    def load_state_dict(self, state: dict) -> None:
        self._resume = dict(state)

    def __iter__(self):
        return self._batches()

    def _batches(self):
        epoch = getattr(self.sampler, "epoch", None)  # set by Lightning before the first batch
        resume, self._resume = self._resume, None
        skip = int(resume["batches"]) if resume and resume.get("epoch") == epoch else 0
        self._epoch, self._yielded = epoch, 0
        for batch in super().__iter__():
            self._yielded += 1
            if self._yielded > skip:
                yield batch


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _load(source: ImageSource, what: str) -> list[LabeledImage]:
    from rich.progress import track

    if len(source) <= 4:
        return [source.load(i) for i in range(len(source))]
    return [
        source.load(i)
        for i in track(range(len(source)), description=f"loading {what}", transient=True)
    ]


def _check_settings(**values) -> None:
    """The data settings that cannot work, before anything is loaded (:class:`SettingError`)."""
    at_least = {"batch_size": 1, "patches_per_epoch": 1, "patch_size": 1, "num_workers": 0,
                "context": 0}  # fmt: skip
    for name, lowest in at_least.items():
        value = values[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            raise SettingError(f"data.{name}", value, f"must be an integer of at least {lowest}")
    if not 0.0 <= values["synthetic_ratio"] <= 1.0:
        raise SettingError("data.synthetic_ratio", values["synthetic_ratio"], "must be in [0, 1]")
    if values["patches_per_epoch"] < values["batch_size"]:
        raise SettingError(
            "data.patches_per_epoch",
            values["patches_per_epoch"],
            f"must be at least data.batch_size ({values['batch_size']}); incomplete batches "
            "are dropped",
        )


def _check_patch_size(images: list[LabeledImage], patch_size: int, what: str) -> None:
    """Every image must hold a whole patch; the error names the smallest one."""
    if not images:
        return
    smallest = min(images, key=lambda item: min(item.shape))
    height, width = smallest.shape
    if min(height, width) < patch_size:
        raise SettingError(
            "data.patch_size",
            patch_size,
            f"larger than the {what} {smallest.source or smallest.image_id} ({width}x{height})",
        )


def _check_synthetic_size(synthetic, patch_size: int, ratio: float) -> None:
    """A synthetic dataset that records its patch size (``histo-gan synthesize``) must hold one."""
    dataset = getattr(synthetic, "dataset", None)
    size = getattr(dataset, "header", {}).get("size") if ratio > 0 else None
    if isinstance(size, int) and size < patch_size:
        raise SettingError(
            "data.patch_size",
            patch_size,
            f"larger than the {size} px samples of the synthetic dataset {dataset.root}",
        )


class HistoDataModule(L.LightningDataModule):
    """Real, synthetic and unpaired streams over one split, with whole-image evaluation.

    Args:
        source: labeled real images; default: the sample bundled with the package.
        split: how ``source`` is divided by image (saved as ``split.json``).
        val_source: explicit validation images (replaces the split's val set).
        test_source: explicit test images (replaces the split's test set).
        predict_source: images for ``predict`` (labels optional); default: the test set.
        synthetic: a synthetic dataset (:class:`~histo_gan.data.sources.SyntheticFolder`).
        synthetic_ratio: probability that a training patch is synthetic (0 = real only,
            1 = synthetic only).
        real_domain: images of the unpaired real stream (labels not needed).
        unpaired_real: add a ``real`` patch to every training item.
        reference: add a ``reference`` patch: ``"same_image"``, ``"same_organ"`` or ``"none"``;
            with ``unpaired_real`` also a ``real_reference`` patch paired with ``real``.
        patch_size: side of training patches, pixels.
        patches_per_epoch: training items per epoch (the epoch is a budget in samples).
        batch_size: training batch size (evaluation uses 1 whole image per batch).
        augmentation: image + label map augmentation; ``None`` for the default.
        augment: set ``False`` to switch augmentation off.
        context: border cropped around patches before augmentation (see TrainPatchDataset).
        num_workers: DataLoader workers.
        seed: seeds patch sampling; the same seed gives the same patches. ``None``: the
            run's seed (``seed_everything``, read when the training loader is made), so that
            the seeds of a comparison are independent draws of patches as well as of weights.
    """

    def __init__(
        self,
        source: ImageSource | None = None,
        split: SplitStrategy | None = None,
        val_source: ImageSource | None = None,
        test_source: ImageSource | None = None,
        predict_source: ImageSource | None = None,
        synthetic: ImageSource | None = None,
        synthetic_ratio: float = 0.0,
        real_domain: ImageSource | None = None,
        unpaired_real: bool = False,
        reference: ReferenceMode = "none",
        patch_size: int = 256,
        patches_per_epoch: int = 512,
        batch_size: int = 8,
        augmentation: Augmentation | None = None,
        augment: bool = True,
        context: int = 16,
        num_workers: int = 0,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        _check_settings(
            batch_size=batch_size, patches_per_epoch=patches_per_epoch, patch_size=patch_size,
            num_workers=num_workers, context=context, synthetic_ratio=synthetic_ratio,
        )  # fmt: skip
        self.source = source if source is not None else BundledSample()
        self.split_strategy = split if split is not None else RandomSplit(0.2, 0.2, seed=0)
        self.val_source, self.test_source = val_source, test_source
        self.predict_source = predict_source
        self.synthetic, self.synthetic_ratio = synthetic, synthetic_ratio
        self.real_domain, self.unpaired_real = real_domain, unpaired_real
        self.reference = reference
        self.patch_size, self.patches_per_epoch = patch_size, patches_per_epoch
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.augmentation = (augmentation or HistoAugment()) if augment else None
        self.context = context
        self.split: Split | None = None
        self._train: list[LabeledImage] | None = None
        self._val: list[LabeledImage] | None = None
        self._test: list[LabeledImage] | None = None
        self._predict: list[LabeledImage] | None = None

    # -- setup -----------------------------------------------------------------------------
    def make_split(self) -> Split:
        """Split ``source`` (cheap: no pixels are read)."""
        if self.split is None:
            self.split = self.split_strategy(self.source.image_ids, self.source.organs)
        return self.split

    def setup(self, stage: str | None = None) -> None:
        # OpenCV and BLAS get the thread budget torch has in this process (under DDP, the
        # process's share of the cores), not one thread per core each.
        limit_threads(torch.get_num_threads())
        split = self.make_split()
        if stage in (None, "fit") and self._train is None:
            self._train = _load(self.source.subset(split.train), "training images")
            _check_patch_size(self._train, self.patch_size, "training image")
            _check_synthetic_size(self.synthetic, self.patch_size, self.synthetic_ratio)
        if stage in (None, "fit", "validate") and self._val is None:
            source = self.val_source or self.source.subset(split.val)
            self._val = _load(source, "validation images")
        if stage in (None, "test") and self._test is None:
            source = self.test_source or self.source.subset(split.test)
            self._test = _load(source, "test images")
        if stage == "predict" and self._predict is None:
            source = self.predict_source or self.test_source or self.source.subset(split.test)
            self._predict = _load(source, "images to predict")
        self._save_split()

    def _save_split(self) -> None:
        trainer = getattr(self, "trainer", None)
        log_dir = getattr(trainer, "log_dir", None) if trainer is not None else None
        if not log_dir or self.split is None or not getattr(trainer, "is_global_zero", True):
            return
        if not trainer.loggers and Path(log_dir).resolve() == Path.cwd().resolve():
            return  # a bare Trainer has no run folder: write nothing into the working directory
        self.split.save(Path(log_dir) / "split.json")

    # -- loaders ---------------------------------------------------------------------------
    def train_dataset(self) -> TrainPatchDataset:
        if self._train is None:
            self.setup("fit")
        real_domain = None
        if self.unpaired_real:
            real_domain = (
                _load(self.real_domain, "real-domain images") if self.real_domain else self._train
            )
            _check_patch_size(real_domain, self.patch_size, "real-domain image")
        return TrainPatchDataset(
            real=[item for item in self._train if item.label is not None],
            synthetic=self.synthetic,
            synthetic_ratio=self.synthetic_ratio,
            patch_size=self.patch_size,
            augmentation=self.augmentation,
            context=self.context,
            reference=self.reference,
            real_domain=real_domain,
            length=self.patches_per_epoch,
        )

    @property
    def sampling_seed(self) -> int:
        """The seed of the training patches: ``seed``, or the run's seed when it is ``None``."""
        if self.seed is not None:
            return self.seed
        return int(os.environ.get("PL_GLOBAL_SEED", 0))

    def train_dataloader(self) -> DataLoader:
        dataset = self.train_dataset()
        sampler = EpochKeySampler(self.patches_per_epoch, self.sampling_seed)
        if _distributed():
            sampler = KeyShardSampler(sampler)  # each process its own share of the keys
            if len(sampler) < self.batch_size:
                raise ValueError(
                    f"patches_per_epoch ({self.patches_per_epoch}) split over "
                    f"{sampler.num_replicas} processes leaves {len(sampler)} per process, "
                    f"less than one batch ({self.batch_size})"
                )
        return ResumableDataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            worker_init_fn=single_threaded_worker,
            persistent_workers=self.num_workers > 0,
            drop_last=True,
        )

    def _whole_images(self, images: list[LabeledImage] | None, stage: str) -> DataLoader:
        if images is None:
            self.setup(stage)
            images = {"validate": self._val, "test": self._test, "predict": self._predict}[stage]
        dataset = WholeImageDataset(images or [])
        sampler = None
        if _distributed():
            # Each image is scored exactly once across processes: the default distributed
            # sampler would pad with repeated images and count them twice in the metrics.
            sampler = PaddedShardSampler(dataset)
        return ForkSafeDataLoader(
            dataset,
            batch_size=1,
            sampler=sampler,
            num_workers=self.num_workers,
            worker_init_fn=single_threaded_worker,
        )

    def val_dataloader(self) -> DataLoader:
        return self._whole_images(self._val, "validate")

    def test_dataloader(self) -> DataLoader:
        return self._whole_images(self._test, "test")

    def predict_dataloader(self) -> DataLoader:
        return self._whole_images(self._predict, "predict")
