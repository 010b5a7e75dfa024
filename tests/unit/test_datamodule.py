"""HistoDataModule: the batch contract, seeding, mixing, references and whole-image evaluation."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from histo_gan.data import BundledSample, HistoDataModule, ImageSource, NoAugment
from histo_gan.data.patches import EpochKeySampler, TrainPatchDataset
from histo_gan.types import LabeledImage


class InMemorySource(ImageSource):
    def __init__(self, items):
        self.items = items
        self.image_ids = [i.image_id for i in items]
        self.organs = [i.organ for i in items]

    def load(self, index):
        return self.items[index]


def synthetic_items(n=3, size=80):
    rng = np.random.default_rng(1)
    items = []
    for k in range(n):
        label = np.zeros((size, size), dtype=np.int32)
        label[10:20, 10:20] = k + 1
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        items.append(LabeledImage(image, label, f"syn{k}", "kidney", weight=0.5, is_synthetic=True))
    return items


def first_batch(dm):
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))


def test_batches_follow_the_contract():
    dm = HistoDataModule(patch_size=64, patches_per_epoch=8, batch_size=4)
    batch = first_batch(dm)
    assert batch["image"].shape == (4, 3, 64, 64) and batch["image"].dtype == torch.float32
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    assert batch["label"].shape == (4, 64, 64) and batch["label"].dtype == torch.int32
    assert batch["label"].min() >= 0 and batch["label"].max() > 0
    assert batch["weight"].tolist() == [1.0] * 4 and not batch["is_synthetic"].any()
    assert len(batch["image_id"]) == 4 and set(batch["organ"]) <= {
        "breast",
        "kidney",
        "liver",
        "prostate",
        "colon",
    }
    assert set(batch["image_id"]) <= set(dm.split.train)
    assert "reference" not in batch and "real" not in batch


def test_same_seed_same_patches_new_epoch_new_patches():
    def patches(seed, epochs=2):
        dm = HistoDataModule(patch_size=32, patches_per_epoch=4, batch_size=4, seed=seed)
        dm.setup("fit")
        loader = dm.train_dataloader()
        return [next(iter(loader))["image"] for _ in range(epochs)]

    a, b, c = patches(0), patches(0), patches(1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a[0], c[0])


def test_sampler_is_independent_of_worker_count():
    sampler = EpochKeySampler(6, seed=3)
    first, second = list(sampler), list(sampler)
    sampler.set_epoch(0)
    assert list(sampler) == first and first != second


def test_synthetic_mixing_ratio_and_weights():
    dm = HistoDataModule(
        synthetic=InMemorySource(synthetic_items()),
        synthetic_ratio=0.3,
        patch_size=32,
        patches_per_epoch=400,
        batch_size=400,
        augment=False,
    )
    batch = first_batch(dm)
    fraction = batch["is_synthetic"].float().mean().item()
    # Binomial(400, 0.3): sd 0.023; 4 sd bounds.
    assert abs(fraction - 0.3) < 0.092
    assert torch.all(batch["weight"][batch["is_synthetic"]] == 0.5)
    assert torch.all(batch["weight"][~batch["is_synthetic"]] == 1.0)
    assert all(i.startswith("syn") for i, s in zip(batch["image_id"], batch["is_synthetic"]) if s)


def crop_found_in(patch, image):
    """Whether ``patch`` (s, s, 3) occurs in ``image`` at some offset."""
    s = patch.shape[0]
    corner = (image[: image.shape[0] - s + 1, : image.shape[1] - s + 1] == patch[0, 0]).all(-1)
    return any(np.array_equal(image[y : y + s, x : x + s], patch) for y, x in np.argwhere(corner))


@pytest.mark.parametrize("mode", ["same_image", "same_organ"])
def test_reference_patches_come_from_the_right_image(mode):
    dm = HistoDataModule(
        patch_size=32, patches_per_epoch=6, batch_size=6, augment=False, reference=mode
    )
    batch = first_batch(dm)
    images = {item.image_id: item for item in dm._train}
    for k in range(6):
        ref = (batch["reference"][k].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        owners = [i for i, item in images.items() if crop_found_in(ref, item.image)]
        assert owners, "the reference must be a crop of a training image"
        if mode == "same_image":
            assert owners == [batch["image_id"][k]]
        else:
            assert images[owners[0]].organ == batch["organ"][k]


def test_unpaired_real_stream_is_independent_of_the_image():
    dm = HistoDataModule(patch_size=32, patches_per_epoch=8, batch_size=8, unpaired_real=True)
    batch = first_batch(dm)
    assert batch["real"].shape == batch["image"].shape
    assert not torch.equal(batch["real"], batch["image"])


def test_synthetic_only_training_needs_no_real_labels():
    dataset = TrainPatchDataset(
        real=[],
        synthetic=InMemorySource(synthetic_items()),
        synthetic_ratio=1.0,
        patch_size=32,
        augmentation=NoAugment(),
        length=4,
    )
    assert dataset[123]["is_synthetic"].item()
    with pytest.raises(ValueError, match="needs labeled real training images"):
        TrainPatchDataset([], InMemorySource(synthetic_items()), 0.5, 32)
    with pytest.raises(ValueError, match="smaller than the patch size 128"):
        TrainPatchDataset([], InMemorySource(synthetic_items()), 1.0, 128, length=1)[0]


def test_whole_image_evaluation_and_split_saved(tmp_path):
    dm = HistoDataModule()
    dm.setup("validate")
    dm.setup("test")
    val = list(dm.val_dataloader())
    test = list(dm.test_dataloader())
    assert len(val) == 1 and len(test) == 1
    assert val[0]["image"].shape == (1, 3, 256, 256) and val[0]["label"].shape == (1, 256, 256)
    assert val[0]["image_id"] != test[0]["image_id"]
    dm.split.save(tmp_path / "split.json")
    saved = json.loads((tmp_path / "split.json").read_text())
    assert saved["val"] == dm.split.val and len(saved["train"]) == 4
    assert sorted(saved["train"] + saved["val"] + saved["test"]) == sorted(
        BundledSample().image_ids
    )


def owners_of(patch, images):
    """Ids of the images in ``images`` (id -> LabeledImage) that contain ``patch`` (3, s, s)."""
    crop = (patch.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return [i for i, item in images.items() if crop_found_in(crop, item.image)]


@pytest.mark.parametrize("mode", ["same_image", "same_organ"])
def test_real_pairs_come_from_one_image_or_organ(mode):
    dm = HistoDataModule(
        patch_size=32,
        patches_per_epoch=6,
        batch_size=6,
        augment=False,
        reference=mode,
        unpaired_real=True,
    )
    batch = first_batch(dm)
    assert batch["real_reference"].shape == batch["real"].shape == (6, 3, 32, 32)
    assert batch["real_reference"].dtype == torch.float32
    images = {item.image_id: item for item in dm._train}
    for k in range(6):
        real, pair = (
            owners_of(batch["real"][k], images),
            owners_of(batch["real_reference"][k], images),
        )
        assert len(real) == 1 and pair, "both halves of a real pair are crops of training images"
        if mode == "same_image":
            assert pair == real
        else:
            assert {images[i].organ for i in pair} == {images[real[0]].organ}
    assert not torch.equal(batch["real"], batch["real_reference"])


def test_real_pairs_are_seeded_and_independent_of_workers():
    def pairs(seed, workers):
        dm = HistoDataModule(
            patch_size=32,
            patches_per_epoch=4,
            batch_size=4,
            reference="same_image",
            unpaired_real=True,
            num_workers=workers,
            seed=seed,
        )
        batch = first_batch(dm)
        return batch["real"], batch["real_reference"], batch["reference"]

    a, b, c = pairs(0, 0), pairs(0, 2), pairs(1, 0)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[1], c[1])


def test_real_pairs_draw_from_the_real_domain():
    """With a separate real domain, S' and S both come from it (here: the same organ)."""
    rng = np.random.default_rng(2)
    domain = [
        LabeledImage(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8), None, f"r{k}", organ)
        for k, organ in enumerate(["liver", "liver", "colon"])
    ]
    dataset = TrainPatchDataset(
        real=[],
        synthetic=InMemorySource(synthetic_items()),
        synthetic_ratio=1.0,
        patch_size=32,
        augmentation=NoAugment(),
        reference="same_organ",
        real_domain=domain,
        length=24,
    )
    images = {item.image_id: item for item in domain}
    for key in range(24):
        item = dataset[key]
        real, pair = owners_of(item["real"], images), owners_of(item["real_reference"], images)
        assert {images[i].organ for i in pair} == {images[i].organ for i in real}
        # The synthetic items are kidney, absent from the domain: any domain image will do.
        assert owners_of(item["reference"], images)
    assert (
        "real_reference"
        not in TrainPatchDataset(
            [], InMemorySource(synthetic_items()), 1.0, 32, real_domain=domain
        )[0]
    )


def test_split_goes_into_the_run_folder_and_never_into_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dm = HistoDataModule()
    dm.trainer = SimpleNamespace(log_dir=str(tmp_path), loggers=[], is_global_zero=True)
    dm.setup("validate")
    assert not (tmp_path / "split.json").exists()  # a bare Trainer: no run folder
    run = tmp_path / "run"
    dm.trainer = SimpleNamespace(log_dir=str(run), loggers=[], is_global_zero=True)
    dm.setup("validate")
    assert json.loads((run / "split.json").read_text())["val"] == dm.split.val


def test_seed_none_follows_the_runs_seed(monkeypatch):
    def first_keys(seed, run_seed):
        monkeypatch.setenv("PL_GLOBAL_SEED", str(run_seed))
        dm = HistoDataModule(patch_size=32, patches_per_epoch=8, batch_size=4, seed=seed)
        dm.setup("fit")
        return list(dm.train_dataloader().sampler)

    assert first_keys(None, 3) == first_keys(3, 0)  # None reads the run's seed
    assert first_keys(None, 3) != first_keys(None, 4)
    assert first_keys(0, 3) == first_keys(0, 4)  # an explicit seed ignores it
