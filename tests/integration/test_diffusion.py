"""The mask-conditioned diffusion module on the bundled sample: condition, guidance, EMA,
exact resume, deterministic sampling, and export to a dataset the DataModule reads."""

from __future__ import annotations

import os

import lightning as L
import numpy as np
import pytest
import torch

from histo_gan.callbacks import RunCheckpoint, SyntheticExport
from histo_gan.data import GeneratedMasks, HistoDataModule, SyntheticFolder
from histo_gan.modules import DiffusionModule, LinearWarmup, MaskCondition
from histo_gan.synthesis import RandomPolygonMasks

os.environ.setdefault("HF_HUB_OFFLINE", "1")
diffusers = pytest.importorskip("diffusers")

SIZE = 32


def tiny_unet(condition_channels: int = 4):
    torch.manual_seed(0)
    return diffusers.UNet2DModel(
        sample_size=SIZE,
        in_channels=3 + condition_channels,
        out_channels=3,
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )


def tiny_module(**kwargs) -> DiffusionModule:
    kwargs = {"sampling_steps": 3, "ema_decay": 0.9, "lr_schedule": LinearWarmup(2), **kwargs}
    optimizer = lambda p: torch.optim.AdamW(p, lr=1e-3)  # noqa: E731
    return DiffusionModule(tiny_unet(), optimizer=optimizer, **kwargs)


def datamodule(**kwargs) -> HistoDataModule:
    masks = GeneratedMasks(RandomPolygonMasks(max_overlap=0.1), n=6, size=SIZE, seed=1)
    kwargs = {
        "patch_size": SIZE,
        "patches_per_epoch": 8,
        "batch_size": 4,
        "predict_source": masks,
        **kwargs,
    }
    return HistoDataModule(**kwargs)


def trainer(root, epochs: int, callbacks=()) -> L.Trainer:
    """2 steps an epoch (8 patches, batch 4)."""
    return L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        default_root_dir=root,
        logger=False,
        limit_val_batches=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )


def two_nuclei() -> torch.Tensor:
    label = torch.zeros(2, SIZE, SIZE, dtype=torch.int32)
    label[0, 4:13, 4:13] = 3  # 9 x 9 square
    label[0, 13:22, 4:13] = 5  # touching it below
    label[1, 20:30, 10:20] = 1
    return label


def test_condition_encodes_mask_classes_and_a_per_nucleus_distance():
    condition = MaskCondition(boundary_width=1).encode(two_nuclei())
    assert condition.shape == (2, 4, SIZE, SIZE) and condition.dtype == torch.float32
    background, interior, boundary, distance = condition[0]
    assert background[0, 0] == 1 and interior[0, 0] == -1 and distance[0, 0] == -1
    assert (
        boundary[4, 8] == 1 and boundary[12, 8] == 1 and boundary[13, 8] == 1
    )  # the touching edge
    # centre of each 9 x 9 nucleus is its farthest point from the edge: 1 after mapping
    assert distance[8, 8] == pytest.approx(1.0) and distance[17, 8] == pytest.approx(1.0)
    # edge pixels: 1 / (max distance + 1) of the way -> 2 / 5 - 1 (max EDT 4 + 1 = 5)
    assert distance[4, 8] == pytest.approx(2 / 5 - 1)
    assert MaskCondition(distance=False).encode(two_nuclei()).shape[1] == 3


def test_denoiser_channels_must_match_the_condition():
    with pytest.raises(ValueError, match="3 image \\+ 3 condition"):
        DiffusionModule(tiny_unet(4), condition=MaskCondition(distance=False))
    with pytest.raises(ValueError, match="condition_dropout > 0"):
        DiffusionModule(tiny_unet(), condition_dropout=0.0, guidance_scale=2.0)


def test_condition_dropout_follows_p_and_training_draws_depend_on_the_step_only():
    module = tiny_module(condition_dropout=0.3)
    x0 = torch.zeros(4000, 1, 1, 1)
    noise, timesteps, dropped = module._draws(x0)
    assert 0.27 < dropped.float().mean() < 0.33
    assert timesteps.min() >= 0 and timesteps.max() == 999 and len(timesteps.unique()) > 900
    again = module._draws(x0)
    assert torch.equal(noise, again[0]) and torch.equal(dropped, again[2])


def test_loss_is_float32_under_bf16_autocast():
    module = tiny_module()
    batch = {"image": torch.rand(2, 3, SIZE, SIZE), "label": two_nuclei()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = module.denoising_loss(batch)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


@pytest.mark.parametrize("sampler", ["DDIMScheduler", "DPMSolverMultistepScheduler"])
def test_sampling_is_deterministic_per_seed_and_id_and_independent_of_the_batch(sampler):
    module = tiny_module(sampler=getattr(diffusers, sampler)()).eval()
    label = two_nuclei()
    first = module.sample(label, ["a", "b"])
    assert first.shape == (2, 3, SIZE, SIZE) and 0 <= first.min() and first.max() <= 1
    assert torch.equal(first, module.sample(label, ["a", "b"]))
    # alone, the same sample (up to the rounding of batched convolutions)
    assert torch.allclose(first[1:], module.sample(label[1:], ["b"]), atol=1e-4)
    assert not torch.allclose(first[0], module.sample(label[:1], ["c"])[0])
    module.hparams.sample_seed = 1
    assert not torch.allclose(first, module.sample(label, ["a", "b"]))


def test_guidance_scale_one_is_the_conditional_model_alone():
    module = tiny_module(guidance_scale=1.0).eval()
    x, t = torch.randn(2, 3, SIZE, SIZE), torch.tensor([10, 500])
    condition = module.condition.encode(two_nuclei())
    conditional = module.denoiser(torch.cat([x, condition], 1), t).sample
    assert torch.allclose(module._guided(x, t, condition), conditional)
    module.hparams.guidance_scale = 3.0
    unconditional = module.denoiser(torch.cat([x, torch.zeros_like(condition)], 1), t).sample
    expected = unconditional + 3.0 * (conditional - unconditional)
    assert torch.allclose(module._guided(x, t, condition), expected, atol=1e-5)


def test_the_sampler_uses_the_ema_weights_and_training_weights_come_back(tmp_path):
    module = tiny_module()
    trainer(tmp_path, 2).fit(module, datamodule())
    module.eval()
    trained = [p.detach().clone() for p in module.denoiser.parameters()]
    assert module.ema.optimization_step == 4
    assert not all(torch.equal(p, s) for p, s in zip(trained, module.ema.shadow_params))
    label = two_nuclei()
    with_ema = module.sample(label, ["a", "b"])
    assert all(torch.equal(p, q) for p, q in zip(trained, module.denoiser.parameters()))
    module.ema.copy_to(module.denoiser.parameters())
    ema = module.ema
    module.ema = None  # the same sampling, by hand, with the EMA weights in the denoiser
    assert torch.equal(with_ema, module.sample(label, ["a", "b"]))
    module.ema = ema


def test_resume_from_last_ckpt_equals_an_uninterrupted_run(tmp_path):
    # 2 epochs (4 steps), resume from last.ckpt for 2 more; compare with 4 epochs in one go
    def run(root, epochs, ckpt_path=None):
        L.seed_everything(0)
        module = tiny_module()
        fit = trainer(root, epochs, [RunCheckpoint(dirpath=str(root / "checkpoints"))])
        fit.fit(module, datamodule(), ckpt_path=ckpt_path)
        return module, fit

    resumed_root = tmp_path / "resumed"
    run(resumed_root, 2)
    last = resumed_root / "checkpoints" / "last.ckpt"
    early = torch.load(last, weights_only=False)["module_state"]["ema"]
    assert early["optimization_step"] == 4
    resumed, resumed_trainer = run(resumed_root, 4, ckpt_path=str(last))
    straight, straight_trainer = run(tmp_path / "straight", 4)

    assert resumed_trainer.global_step == straight_trainer.global_step == 8
    assert resumed.ema.optimization_step == straight.ema.optimization_step == 8
    for a, b in zip(resumed.ema.shadow_params, straight.ema.shadow_params):
        assert torch.equal(a, b)
    for a, b in zip(resumed.denoiser.parameters(), straight.denoiser.parameters()):
        assert torch.equal(a, b)
    opt_a, opt_b = resumed_trainer.optimizers[0], straight_trainer.optimizers[0]
    for a, b in zip(opt_a.state_dict()["state"].values(), opt_b.state_dict()["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in ("step", "exp_avg", "exp_avg_sq"))
    groups_a, groups_b = opt_a.param_groups[0], opt_b.param_groups[0]
    assert groups_a["initial_lr"] == groups_b["initial_lr"] == 1e-3
    assert groups_a["lr"] == groups_b["lr"] == 1e-3  # past the 2-step warmup
    # a lost EMA state would show: the 4-step average differs from the 8-step one
    assert not all(
        torch.equal(a, b) for a, b in zip(early["shadow_params"], straight.ema.shadow_params)
    )


def test_predict_exports_pairs_that_the_datamodule_loads(tmp_path):
    module = tiny_module()
    data = datamodule()
    trainer(tmp_path, 1).fit(module, data)
    root = tmp_path / "pairs"
    export = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
        callbacks=[SyntheticExport(root, method="diffusion")],
    )
    export.predict(module, data, return_predictions=False)
    exported = SyntheticFolder(root)
    assert len(exported) == 6
    masks = GeneratedMasks(RandomPolygonMasks(max_overlap=0.1), n=6, size=SIZE, seed=1)
    for k in range(6):
        sample = exported.load(k)
        assert sample.is_synthetic and sample.image.shape == (SIZE, SIZE, 3)
        assert np.array_equal(sample.label, masks.load(k).label)  # the exact input mask
    # the exported image is the module's sample for that mask and id (deterministic)
    first = exported.load(0)
    expected = module.eval().sample(torch.from_numpy(first.label)[None], [first.image_id])
    pixels = (expected[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.abs(pixels.astype(int) - first.image.astype(int)).max() <= 1
    # and it is a training set like any other synthetic set
    loader = HistoDataModule(
        synthetic=SyntheticFolder(root),
        synthetic_ratio=1.0,
        patch_size=SIZE,
        patches_per_epoch=4,
        batch_size=4,
    )
    loader.setup("fit")
    batch = next(iter(loader.train_dataloader()))
    assert batch["image"].shape == (4, 3, SIZE, SIZE) and bool(batch["is_synthetic"].all())


def test_label_maps_of_any_size_are_padded_to_the_size_multiple():
    module = tiny_module(size_multiple=4).eval()
    label = two_nuclei()[:, :30, :27]
    sample = module.sample(label, ["a", "b"])
    assert sample.shape == (2, 3, 30, 27)


def test_validation_samples_with_heldout_steps_and_export_with_sampling_steps(tmp_path):
    module = tiny_module(sampling_steps=3, heldout_sampling_steps=1)
    steps = []
    set_timesteps = module.sampler.set_timesteps
    module.sampler.set_timesteps = lambda n, **kw: (steps.append(n), set_timesteps(n, **kw))
    validate = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        limit_val_batches=1,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    metrics = validate.validate(module, datamodule(patch_size=SIZE), verbose=False)[0]
    assert steps == [1] and 0 < metrics["val/l1"] < 1
    module.synthesize({"label": two_nuclei(), "image_id": ["a", "b"]})
    assert steps == [1, 3]
