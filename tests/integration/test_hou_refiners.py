"""The Hou refiner modules on the bundled sample: training, Algorithm 1, resume, importance
weights, export, and the segmenter trained on the export."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from histo_gan.callbacks import SampleGrid, SyntheticExport
from histo_gan.cli import main
from histo_gan.data import HistoDataModule, SyntheticFolder
from histo_gan.data.sources import bundled_sample_dir
from histo_gan.data.synthetic import SyntheticDataset
from histo_gan.inference import SlidingWindow
from histo_gan.losses import ImportanceWeighting, ReplayBuffer
from histo_gan.modules import (
    HardExampleRefinerModule,
    ImportanceSamplingRefinerModule,
    SegmenterModule,
)
from histo_gan.networks import PairDiscriminator, ReferenceRefiner, SmpUnet
from histo_gan.training import RefinerPhases, SegmentationHead
from histo_gan.types import RefinerBatch
from tests.integration.cli_process import histo_gan_process

METRIC_NAMES = ("dice", "aji", "aji_plus", "pq", "hausdorff", "object_dice", "aggregate/aji")
MODULES = (HardExampleRefinerModule, ImportanceSamplingRefinerModule)
# Algorithm 1 with N_G 2, N_D 2, N_GD 1 (n_G 1, n_D 1), N_R 2, N_GDR 2 (n_R 2), final R 1.
SMALL = RefinerPhases(2, 2, 1, 2, 2, 1, 1, 2, 1)


def tiny_networks(use_reference=True):
    return dict(
        refiner=ReferenceRefiner(
            base_channels=8,
            texture_channels=8,
            texture_convs=2,
            blocks=1,
            use_reference=use_reference,
        ),
        discriminator=PairDiscriminator(
            base_channels=8,
            texture_channels=8,
            texture_convs=2,
            convs_per_stage=1,
            use_reference=use_reference,
        ),
        segmentation_head=SegmentationHead(SmpUnet("resnet18", 3, (16, 8, 4)), boundary_width=1),
    )


def tiny(cls=HardExampleRefinerModule, phases=SMALL, use_reference=True, **kwargs):
    return cls(
        **tiny_networks(use_reference),
        phases=phases,
        history_size=6,
        sliding_window=SlidingWindow(64, 0.25, 8),
        **kwargs,
    )


def data(masks, **kwargs):
    settings = dict(
        synthetic=SyntheticFolder(masks),
        synthetic_ratio=1.0,
        unpaired_real=True,
        reference="same_image",
        patch_size=32,
        patches_per_epoch=8,
        batch_size=2,
    )
    return HistoDataModule(**{**settings, **kwargs})


def trainer(tmp_path, epochs=1, callbacks=(), **kwargs):
    return L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        default_root_dir=tmp_path,
        logger=L.pytorch.loggers.CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        callbacks=list(callbacks),
        **kwargs,
    )


@pytest.fixture(scope="module")
def masks(tmp_path_factory):
    """An initial synthetic dataset of 8 64-px patches made with ``synthesize --method hou``."""
    out = tmp_path_factory.mktemp("initial") / "hou"
    assert (
        main(
            [
                "synthesize",
                "--source",
                str(bundled_sample_dir() / "images"),
                "--out",
                str(out),
                "--method",
                "hou",
                "--n",
                "8",
                "--size",
                "64",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    return out


class RecordSteps(L.Callback):
    """(phase, index of the optimizer stepped) of every training batch."""

    def __init__(self):
        self.steps: list[tuple[str, int]] = []
        self._phase = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._phase = pl_module.phases.phase

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        index = next(i for i, o in enumerate(trainer.optimizers) if o is optimizer)
        self.steps.append((self._phase, index))


def finite_train_losses(trainer_):
    losses = {k: float(v) for k, v in trainer_.callback_metrics.items() if k.startswith("train/")}
    assert losses and all(math.isfinite(v) for v in losses.values()), losses
    return losses


@pytest.mark.parametrize("cls", MODULES)
def test_refiner_fits_and_tests_with_the_shared_metrics(tmp_path, masks, cls):
    module = tiny(cls)
    t = trainer(tmp_path, epochs=3, callbacks=[SampleGrid(num_samples=2)])
    dm = data(masks)
    t.fit(module, dm)  # 12 batches: every phase of SMALL runs
    losses = finite_train_losses(t)
    for phase in (
        "generator_pretrain",
        "discriminator",
        "generator",
        "segmenter",
        "generator_hard",
    ):
        assert f"train/{phase}/loss" in losses, phase
    assert losses["train/generator_hard/hard"] < 0  # L_hard = -L_R
    assert 0 < len(module.history) <= 6
    for name in METRIC_NAMES:
        assert f"val/{name}" in t.callback_metrics, name
    results = t.test(module, dm)[0]
    for name in METRIC_NAMES:
        assert 0 <= results[f"test/{name}"] < (1e4 if "hausdorff" in name else 1.0 + 1e-6)

    module.eval()
    batch = next(iter(dm.train_dataloader()))
    refined = module.synthesize(batch)
    assert refined["image"].shape == batch["image"].shape == (2, 3, 32, 32)
    assert 0 <= refined["image"].min() and refined["image"].max() <= 1
    assert (refined["image"] - batch["image"]).abs().max() > 0  # G changed something
    assert torch.equal(refined["label"], batch["label"])
    weight = refined["weight"]
    assert weight.shape == (2,) and (weight > 0).all()
    if cls is HardExampleRefinerModule:
        assert torch.equal(weight, torch.ones(2))
    else:  # c·p/(1−p), clipped to [0.2, 2]
        assert ((weight >= 0.2) & (weight <= 2.0)).all()
    rows = module.sample_images(batch)
    assert list(rows) == ["initial", "refined", "reference", "mask outline"]
    assert (tmp_path / "lightning_logs" / "version_0" / "samples" / "epoch_0002.png").exists()
    if cls is ImportanceSamplingRefinerModule:
        assert "train/segmenter/weight_mean" in losses
        assert losses["train/segmenter/weight_mean"] == pytest.approx(1.0, abs=1e-5)


def test_phase_sequence_is_algorithm_1(tmp_path, masks):
    g, d, r = ("generator", 0), ("discriminator", 1), ("segmenter", 2)
    h = ("generator_hard", 0)
    expected = [("generator_pretrain", 0)] * 2 + [d, d] + [g, d] + [r, r]
    expected += [h, d, r, r] * 2 + [r]
    expected += [r] * 3  # after the last stage the plan stays there
    assert SMALL.total == 17
    record = RecordSteps()
    module = tiny()
    trainer(tmp_path, epochs=5, callbacks=[record], limit_val_batches=0).fit(module, data(masks))
    assert record.steps == expected
    assert module.phases.position == 20


def test_stopped_mid_phase_and_resumed_equals_an_uninterrupted_run(tmp_path, masks):
    def fit(root, module, callbacks=(), ckpt_path=None):
        t = L.Trainer(
            max_epochs=2,
            accelerator="cpu",
            default_root_dir=root,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            callbacks=list(callbacks),
        )
        t.fit(module, data(masks, patches_per_epoch=14), ckpt_path=ckpt_path)  # 7 batches/epoch
        return t

    class StopAfterFirstEpoch(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            trainer.should_stop = True

    L.seed_everything(0)
    straight, straight_steps = tiny(ImportanceSamplingRefinerModule), RecordSteps()
    fit(tmp_path / "a", straight, [straight_steps])

    L.seed_everything(0)
    first, first_steps = tiny(ImportanceSamplingRefinerModule), RecordSteps()
    t = fit(tmp_path / "b", first, [StopAfterFirstEpoch(), first_steps])
    assert first.phases.position == 7 and first.phases.phase == "segmenter"
    assert first_steps.steps[-2:] == [("discriminator", 1), ("segmenter", 2)]  # 1 of 2 R batches
    t.save_checkpoint(tmp_path / "mid.ckpt")
    history = {k: v.clone() for k, v in first.history.stored.items()}
    L.seed_everything(123)  # only the checkpoint may carry state over
    resumed, resumed_steps = tiny(ImportanceSamplingRefinerModule), RecordSteps()
    assert len(resumed.history) == 0
    restored = {}

    class CaptureHistory(L.Callback):
        def on_train_start(self, trainer, pl_module):
            restored.update({k: v.clone() for k, v in pl_module.history.stored.items()})

    fit(tmp_path / "c", resumed, [resumed_steps, CaptureHistory()], ckpt_path=tmp_path / "mid.ckpt")

    assert first_steps.steps + resumed_steps.steps == straight_steps.steps
    assert len(straight_steps.steps) == 14
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert len(resumed.history) == len(straight.history) > 0
    for key, value in straight.history.stored.items():
        assert torch.equal(value, resumed.history.stored[key]), key
    assert len(first.history) == 6  # 3 D batches of 2 so far
    for key, value in history.items():  # the buffer came back with the checkpoint
        assert torch.equal(value[:6], restored[key][:6]), key


def test_history_buffer_fills_then_replaces_and_round_trips():
    history = ReplayBuffer(capacity=4, seed=0)
    assert history.sample(1, torch.device("cpu")) is None
    history.push(image=torch.full((3, 1), 1.0), label=torch.full((3,), 1))
    history.push(image=torch.full((3, 1), 2.0), label=torch.full((3,), 2))
    assert len(history) == 4
    values = sorted(history.stored["image"].flatten().tolist())
    assert values.count(1.0) + values.count(2.0) == 4 and values.count(2.0) >= 1
    assert torch.equal(history.stored["image"].flatten().long(), history.stored["label"])
    copy = ReplayBuffer(capacity=1, seed=5)
    copy.load_state_dict(history.state_dict())
    assert torch.equal(
        copy.sample(2, torch.device("cpu"))["image"],
        history.sample(2, torch.device("cpu"))["image"],
    )


def test_importance_weights_reach_the_segmenter_loss_and_only_the_segmenter():
    torch.manual_seed(0)
    module = tiny(ImportanceSamplingRefinerModule)
    module.train()
    n = 4
    p = torch.tensor([0.5, 0.8, 0.05, 0.99])  # c·p/(1−p) = 1, 4, 0.0526, 99
    clipped = torch.tensor([1.0, 2.0, 0.2, 2.0])  # clip [0.2, 2]
    expected = clipped / clipped.mean()  # normalised over the synthetic items
    batch = {
        "image": torch.rand(n, 3, 32, 32),
        "label": torch.randint(0, 3, (n, 32, 32)).int(),
        "reference": torch.rand(n, 3, 32, 32),
        "real": torch.rand(n, 3, 32, 32),
        "real_reference": torch.rand(n, 3, 32, 32),
        "weight": torch.ones(n),
        "is_synthetic": torch.ones(n, dtype=torch.bool),
    }
    data = RefinerBatch.from_batch(batch)
    weighting = ImportanceWeighting()
    torch.testing.assert_close(weighting.for_segmenter(p, data.synthetic, data.weight), expected)

    # mixed batch: real items keep their weight, synthetic ones normalise among themselves
    mixed = RefinerBatch.from_batch(
        {
            **batch,
            "is_synthetic": torch.tensor([1, 1, 0, 0]).bool(),
            "weight": torch.tensor([1.0, 1.0, 0.5, 3.0]),
        }
    )
    torch.testing.assert_close(
        weighting.for_segmenter(p, mixed.synthetic, mixed.weight),
        torch.tensor([2 / 3, 4 / 3, 0.5, 3.0]),
    )

    # the module's R loss: D's fixed logits -> these weights times R's per-sample losses
    logits = torch.logit(p)[:, None, None, None].expand(n, 1, 16, 16)
    module.D.forward = lambda x, reference=None: logits
    refined = module.G(data.initial, data.reference)  # attached to G's graph
    loss, logs = module.segmenter_loss(refined, data)
    losses = module.R.per_sample_loss(data.for_segmenter(refined.detach()), data.label)
    torch.testing.assert_close(loss, (expected * losses).sum() / expected.sum())
    assert logs["weight_max"] == pytest.approx(float(expected.max()))
    module.zero_grad(set_to_none=True)
    loss.backward()
    assert all(q.grad is None for q in module.G.parameters())
    assert all(q.grad is None for q in module.D.parameters())
    assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in module.R.parameters())


def test_without_a_weighting_the_segmenter_step_and_the_export_never_run_the_discriminator():
    module = tiny(ImportanceSamplingRefinerModule, weighting=None)
    n = 2
    batch = {
        "image": torch.rand(n, 3, 32, 32),
        "label": torch.randint(0, 3, (n, 32, 32)).int(),
        "reference": torch.rand(n, 3, 32, 32),
        "real": torch.rand(n, 3, 32, 32),
        "real_reference": torch.rand(n, 3, 32, 32),
        "weight": torch.tensor([1.0, 3.0]),
        "is_synthetic": torch.ones(n, dtype=torch.bool),
        "image_id": ["a", "b"],
    }

    def no_discriminator(*args, **kwargs):
        raise AssertionError("D was run")

    module.D.forward = no_discriminator
    data = RefinerBatch.from_batch(batch)
    refined = module.refine_frozen(data)
    loss, logs = module.segmenter_loss(refined, data)
    losses = module.R.per_sample_loss(data.for_segmenter(refined), data.label)
    torch.testing.assert_close(loss, (data.weight * losses).sum() / data.weight.sum())
    assert logs == {}
    assert torch.equal(module.synthesize(batch)["weight"], torch.ones(n))


def test_real_plus_synthetic_batches_train_the_segmenter_on_real_items_as_they_are(tmp_path, masks):
    module = tiny(ImportanceSamplingRefinerModule)
    dm = data(masks, synthetic_ratio=0.5, patches_per_epoch=16, batch_size=4)
    batch = next(b for b in dm.train_dataloader() if 0 < b["is_synthetic"].sum() < 4)
    view = RefinerBatch.from_batch(batch)
    refined = torch.zeros_like(view.initial)
    seen = view.for_segmenter(refined)
    real = ~batch["is_synthetic"]
    assert torch.allclose(seen[real], batch["image"][real], atol=1e-6)
    assert torch.equal(seen[~real], torch.full_like(seen[~real], 0.5))
    t = trainer(tmp_path, epochs=2, limit_val_batches=0)
    t.fit(module, dm)
    finite_train_losses(t)


@pytest.mark.parametrize("cls", MODULES)
def test_export_is_a_weighted_synthetic_dataset_that_trains_a_segmenter(tmp_path, masks, cls):
    module = tiny(cls)
    trainer(tmp_path, epochs=2, limit_val_batches=0).fit(module, data(masks))
    exported = tmp_path / "refined"
    export = SyntheticExport(exported, method="hou-refiner", prefix="r-")
    predict_dm = HistoDataModule(predict_source=SyntheticFolder(masks))
    trainer(tmp_path, callbacks=[export]).predict(module, predict_dm, return_predictions=False)
    refined, initial = SyntheticDataset(exported), SyntheticDataset(masks)
    assert len(refined) == 8 and refined.header["method"] == "hou-refiner"
    weights = [refined[k].weight for k in range(8)]
    for k in range(8):
        assert refined[k].meta["source_ids"] == [initial[k].image_id]
        assert (refined[k].label == initial[k].label).all()
        assert refined[k].image.shape == initial[k].image.shape
    if cls is ImportanceSamplingRefinerModule:
        assert all(0.2 <= w <= 2.0 for w in weights) and len(set(weights)) > 1
    else:
        assert weights == [1.0] * 8
    folder = SyntheticFolder(exported)
    assert [folder.load(k).weight for k in range(8)] == pytest.approx(weights, abs=1e-6)

    segmenter_dm = HistoDataModule(
        synthetic=folder, synthetic_ratio=0.5, patch_size=32, patches_per_epoch=8, batch_size=4
    )
    segmenter = SegmenterModule(
        SmpUnet("resnet18", 3, (16, 8, 4)),
        boundary_width=1,
        sliding_window=SlidingWindow(64, 0.25, 8),
    )
    t = trainer(tmp_path / "segmenter", limit_val_batches=0)
    t.fit(segmenter, segmenter_dm)
    finite_train_losses(t)


# Every phase once: G pre-training, D pre-training, G, D, R pre-training, G hard, D, R.
PHASES_OF_8 = [
    f"--model.init_args.phases.init_args.{k}=1"
    for k in (
        "pretrain_generator_steps",
        "pretrain_discriminator_steps",
        "adversarial_rounds",
        "pretrain_segmenter_steps",
        "joint_rounds",
        "generator_steps",
        "segmenter_steps",
    )
]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["hou2017", "hou2019"])
def test_fast_dev_run_under_two_process_ddp(tmp_path, repo_root, method):
    """Every phase leaves two networks idle: DDP runs with find_unused_parameters and each
    process keeps its own history buffer (seeded alike)."""
    logger = f"--trainer.logger=[{{class_path: lightning.pytorch.loggers.CSVLogger, init_args: {{save_dir: {tmp_path}, name: ddp}}}}]"
    output = histo_gan_process(
        "fit",
        "--config",
        f"conf/experiment/{method}_refiner_tiny.yaml",
        logger,
        "--trainer.callbacks=[]",
        f"--trainer.default_root_dir={tmp_path}",  # the run folder: not the repository's runs/
        "--trainer.strategy=ddp_find_unused_parameters_true",
        "--trainer.devices=2",
        "--trainer.fast_dev_run=8",
        "--data.synthetic.n=16",
        "--data.patch_size=32",
        "--data.batch_size=2",
        *PHASES_OF_8,
        cwd=repo_root,
        timeout=300,
    )
    assert "Running in `fast_dev_run` mode: will run the requested loop using 8 batch(es)" in output
