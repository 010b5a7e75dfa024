"""DAFF-GAN / pix2pixHD module on the bundled sample: both stages and generators from their tiny
configs, the coarse-to-fine stages across a checkpoint, and the chained two-stage export."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from jsonargparse import ArgumentParser

from histo_gan.callbacks import SampleGrid, SyntheticExport
from histo_gan.cli import main
from histo_gan.config_files import overlaid_files
from histo_gan.data import HistoDataModule, SyntheticFolder
from histo_gan.data.sources import bundled_sample_dir
from histo_gan.modules import Pix2PixHDModule
from histo_gan.training import CoarseToFine, MaskToImage
from histo_gan.types import to_signed
from tests.integration.cli_process import histo_gan_process

REPO = Path(__file__).resolve().parents[2]
STAGES = {
    1: "conf/experiment/pix2pixhd_stage1_tiny.yaml",
    2: "conf/experiment/pix2pixhd_stage2_tiny.yaml",
}
DAFF = "conf/generator/daffgan_tiny.yaml"


def _merge(base: dict, override: dict) -> dict:
    """``override`` over ``base`` as the CLI merges configs (another class_path replaces)."""
    if "class_path" in override and override["class_path"] != base.get("class_path"):
        return dict(override)
    out = dict(base)
    for key, value in override.items():
        both_dicts = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both_dicts else value
    return out


def module_from_configs(*paths: str, **init_args) -> Pix2PixHDModule:
    """The ``model`` of layered YAML configs (each with the configs it overlays), instantiated
    as the CLI would (jsonargparse)."""
    model: dict = {}
    for file in (f for path in paths for f in overlaid_files(REPO / path)):
        model = _merge(model, yaml.safe_load(Path(file).read_text()).get("model", {}))
    model["init_args"] = {**model["init_args"], **init_args}
    parser = ArgumentParser()
    parser.add_argument("--model", type=L.LightningModule)
    return parser.instantiate(parser.parse_object({"model": model})).model


def configs(stage: int, daff: bool) -> tuple[str, ...]:
    return (STAGES[stage], DAFF) if daff else (STAGES[stage],)


def trainer(tmp_path, callbacks=(), **budget):
    budget.setdefault("max_epochs", 1)
    return L.Trainer(
        accelerator="cpu",
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=list(callbacks),
        **budget,
    )


def data(**kwargs):
    return HistoDataModule(**{"patch_size": 64, "patches_per_epoch": 8, "batch_size": 4, **kwargs})


@pytest.mark.parametrize("daff", [False, True], ids=["pix2pixhd", "daffgan"])
@pytest.mark.parametrize("stage", [1, 2])
def test_tiny_configs_fit_and_predict(tmp_path, stage, daff):
    torch.manual_seed(0)
    module = module_from_configs(*configs(stage, daff))
    assert type(module.G).__name__ == ("DAFFLocalEnhancer" if daff else "LocalEnhancer")
    t = trainer(tmp_path, callbacks=[SampleGrid(num_samples=2)], max_epochs=2)
    t.fit(module, data())
    losses = {k: float(v) for k, v in t.callback_metrics.items() if k.startswith("train/")}
    assert all(math.isfinite(v) for v in losses.values()), losses
    assert losses["train/loss_feature_matching"] > 0 and losses["train/phase"] == 2.0  # joint
    assert 0 < float(t.callback_metrics["val/l1"]) < 1

    predictions = t.predict(module, data())  # the test image, whole (256 px)
    truth = data().test_dataloader().dataset[0]["label"]
    (prediction,) = predictions
    image, label = prediction["image"], prediction["label"]
    assert image.shape == (1, 3, 256, 256) and 0 <= image.min() and image.max() <= 1
    assert label.dtype == torch.int32 and label.shape == (1, 256, 256)
    if stage == 2:  # exactly the conditioning label map
        assert torch.equal(label[0], truth)
    else:  # G1's own instances, ids 1..N; the picture is their encoded mask
        ids = torch.unique(label)
        assert torch.equal(ids, torch.arange(len(ids), dtype=torch.int32))
        red, green = image[0, 0] > 0.5, image[0, 1] > 0.5  # foreground, interior
        assert torch.equal(red, label[0] > 0) and not (green & ~red).any() and (red & ~green).any()


class StopAfterEpoch(L.Callback):
    def __init__(self, last_epoch: int):
        self.last_epoch = last_epoch

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = trainer.current_epoch >= self.last_epoch


def test_coarse_to_fine_switches_at_the_configured_share_and_resumes_bit_exactly(tmp_path):
    def tiny():
        return module_from_configs(STAGES[2], coarse_to_fine=CoarseToFine(0.5, 0.25))

    def params(network):
        return [p.detach().clone() for p in network.parameters()]

    class Phases(L.Callback):
        def __init__(self):
            self.seen, self.global_at_start = [], {}

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if module.phase not in self.seen:
                self.global_at_start[module.phase] = params(module.G.global_generator)
            self.seen.append(module.phase)

    # 4 epochs x 2 batches: global 4 batches, enhancer (global frozen) 2, then joint.
    L.seed_everything(0)
    straight, phases = tiny(), Phases()
    trainer(tmp_path / "a", [phases], max_epochs=4).fit(straight, data())
    assert phases.seen == ["global"] * 4 + ["enhancer"] * 2 + ["joint"] * 2
    frozen = zip(phases.global_at_start["enhancer"], phases.global_at_start["joint"])
    assert all(torch.equal(a, b) for a, b in frozen)  # no change while the enhancer trained alone
    assert straight.coarse_to_fine.state_dict() == {"lengths": [4, 2], "position": 8}

    L.seed_everything(0)
    first = tiny()
    initial_enhancer, initial_global = params(first.G.head), params(first.G.global_generator.up)
    t = trainer(tmp_path / "b", [StopAfterEpoch(1)], max_epochs=4)  # the same budget, stopped
    t.fit(first, data())
    assert first.coarse_to_fine.state_dict() == {"lengths": [4, 2], "position": 4}
    assert all(torch.equal(a, b) for a, b in zip(initial_enhancer, params(first.G.head)))
    assert not all(
        torch.equal(a, b) for a, b in zip(initial_global, params(first.G.global_generator.up))
    )
    t.save_checkpoint(tmp_path / "half.ckpt")

    L.seed_everything(123)  # only the checkpoint may carry the stages over
    resumed, phases = tiny(), Phases()
    trainer(tmp_path / "c", [phases], max_epochs=4).fit(
        resumed, data(), ckpt_path=tmp_path / "half.ckpt"
    )
    assert phases.seen == ["enhancer"] * 2 + ["joint"] * 2
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


def test_coarse_to_fine_needs_the_global_head_the_enhancer_drops_by_default():
    module = module_from_configs(STAGES[2], coarse_to_fine=None)
    assert module.G.global_generator.head is not None  # the config keeps it (global_head: true)
    generator = module.G
    generator.global_generator.head = None  # as LocalEnhancer(global_head=False) leaves it
    with pytest.raises(ValueError, match="global_head: true"):
        Pix2PixHDModule(generator, MaskToImage(), coarse_to_fine=CoarseToFine(0.5, 0.0))
    plain = Pix2PixHDModule(generator, MaskToImage())  # one phase: the head is not needed
    assert not any("global_generator.head" in name for name, _ in plain.named_parameters())


def test_stage_lengths_survive_a_larger_budget():
    stages = CoarseToFine(0.5, 0.1)
    stages.resolve(20)
    for _ in range(7):
        stages.advance()
    restored = CoarseToFine(0.5, 0.1)
    restored.load_state_dict(stages.state_dict())
    restored.resolve(200)  # an extended run: the switch points stay where they were
    assert restored.lengths == (10, 2) and restored.plan.names(6, start=7) == [
        "global",
        "global",
        "global",
        "enhancer",
        "enhancer",
        "joint",
    ]


@pytest.fixture(scope="module")
def centroids(tmp_path_factory):
    out = tmp_path_factory.mktemp("daff") / "centroids"
    sample = bundled_sample_dir()
    assert (
        main(
            [
                "synthesize",
                "--method",
                "centroids",
                "--source",
                str(sample / "images"),
                "--masks",
                str(sample / "labels"),
                "--out",
                str(out),
                "--n",
                "4",
                "--size",
                "64",
                "--seed",
                "0",
                "--grid",
                "0",
            ]
        )
        == 0
    )
    return out


class RecordingMaskToImage(MaskToImage):
    """Stage 2's pairing, remembering every label map G2 is conditioned on."""

    def __init__(self):
        super().__init__()
        self.conditioned_on: dict[str, torch.Tensor] = {}

    def inputs(self, batch):
        for image_id, label in zip(batch["image_id"], batch["label"]):
            self.conditioned_on[image_id] = label.clone()
        return super().inputs(batch)


def load_daff_grid():
    spec = importlib.util.spec_from_file_location("daff_grid", REPO / "experiments/daff_grid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chained_stages_export_images_with_exactly_the_label_maps_g2_was_conditioned_on(
    tmp_path, centroids
):
    torch.manual_seed(0)
    stage1, stage2 = module_from_configs(STAGES[1]), module_from_configs(STAGES[2], lambda_l1=1.0)
    stage2.pairing = recorder = RecordingMaskToImage()
    trainer(tmp_path).fit(stage1, data())
    trainer(tmp_path).fit(stage2, data())
    for item in SyntheticFolder(centroids).dataset:  # G1 sees the stored centroid maps
        stored = to_signed(torch.from_numpy(item.image).permute(2, 0, 1).float() / 255)
        assert torch.equal(
            stage1.pairing.inputs({"label": torch.from_numpy(item.label)[None]})[0], stored
        )

    masks, images = tmp_path / "masks", tmp_path / "daffgan"
    export = SyntheticExport(masks, method="daffgan-stage1", prefix="m-")
    trainer(tmp_path, [export]).predict(stage1, data(predict_source=SyntheticFolder(centroids)))
    recorder.conditioned_on.clear()
    export = SyntheticExport(images, method="daffgan", prefix="he-")
    trainer(tmp_path, [export]).predict(stage2, data(predict_source=SyntheticFolder(masks)))

    synthetic = SyntheticFolder(images)
    assert len(synthetic) == 4 and synthetic.dataset.header["method"] == "daffgan"
    assert sorted(recorder.conditioned_on) == sorted(
        f"m-{i}" for i in SyntheticFolder(centroids).image_ids
    )
    for k in range(4):
        sample = synthetic.load(k)
        conditioning = recorder.conditioned_on[sample.meta["source_ids"][0]].numpy()
        assert sample.image.shape == (64, 64, 3) and np.array_equal(sample.label, conditioning)
    assert sum(int(synthetic.load(k).label.max()) for k in range(4)) > 0  # some nuclei made it

    daff_grid = load_daff_grid()
    rows = daff_grid.chain(centroids, masks, images)
    assert len(rows) == 4 and daff_grid.grid(rows).shape == (4 * 68 + 4, 4 * 68 + 4, 3)
    assert (
        daff_grid.main([str(centroids), str(masks), str(images), "--out", str(tmp_path / "g.png")])
        == 0
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stage", "daff"), [(1, False), (2, True)], ids=["stage1-pix2pixhd", "stage2-daffgan"]
)
def test_fast_dev_run_under_two_process_ddp(tmp_path, repo_root, stage, daff):
    """fast_dev_run=4 is a 2-batch budget (two optimizer steps per batch): one global-phase batch,
    then one joint batch, so both sets of unused parameters occur under DDP."""
    command = ["fit"]
    for config in configs(stage, daff):
        command += ["--config", config]
    command += [
        f"--trainer.default_root_dir={tmp_path}",
        "--name=ddp",
        "--trainer.devices=2",
        "--trainer.strategy=ddp_find_unused_parameters_true",
        "--trainer.fast_dev_run=4",
    ]
    output = histo_gan_process(*command, cwd=repo_root)
    assert "Trainer.fit` stopped: `max_steps=4` reached" in output
