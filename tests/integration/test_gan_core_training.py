"""The shared GAN core inside real training runs: schedules on budgets, resume, extension, state."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from histo_gan.data import HistoDataModule, SyntheticFolder
from histo_gan.losses import ReplayBuffer
from histo_gan.training.schedules import LinearDecay, Progress
from tests.integration.test_mahmood_modules import masks, tiny_cgan, tiny_cyclegan  # noqa: F401


class RecordRates(L.Callback):
    """The generator's learning rate at every training batch, after the module applied it."""

    def __init__(self):
        self.rates: list[tuple[int, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        group = trainer.optimizers[0].param_groups[0]
        self.rates.append((trainer.current_epoch, group["lr"]))


class StopAfterFirstEpoch(L.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


def run(tmp_path, module, datamodule, ckpt_path=None, callbacks=(), **budget):
    trainer = L.Trainer(
        accelerator="cpu",
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=list(callbacks),
        **budget,
    )
    trainer.fit(module, datamodule, ckpt_path=ckpt_path)
    return trainer


def cgan_data(seed=0):
    return HistoDataModule(patch_size=64, patches_per_epoch=8, batch_size=4, seed=seed)


def weights(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_extending_a_finished_run_trains_at_the_rate_the_schedule_gives(tmp_path):
    torch.manual_seed(0)
    module = tiny_cgan()
    trainer = run(tmp_path, module, cgan_data(), max_epochs=2)
    trainer.save_checkpoint(tmp_path / "two.ckpt")
    before = weights(module)

    torch.manual_seed(0)
    extended, record = tiny_cgan(), RecordRates()
    run(
        tmp_path,
        extended,
        cgan_data(),
        ckpt_path=tmp_path / "two.ckpt",
        callbacks=[record],
        max_epochs=3,
    )
    expected = 2e-4 * LinearDecay(0.5).factor(Progress(3, 3, 1.0))
    assert expected > 0
    assert [epoch for epoch, _ in record.rates] == [2, 2]  # only the added epoch ran
    assert all(rate == pytest.approx(expected) for _, rate in record.rates)
    changed = [
        k
        for k, v in weights(extended).items()
        if v.is_floating_point() and not torch.equal(v, before[k])
    ]
    assert any(k.startswith("generator.") for k in changed)


def test_rate_stays_within_zero_and_initial_under_a_step_budget(tmp_path):
    record = RecordRates()
    run(tmp_path, tiny_cgan(), cgan_data(), callbacks=[record], max_steps=12, max_epochs=-1)
    rates = [rate for _, rate in record.rates]
    assert len(rates) == 6  # two optimizer steps per batch: global_step reaches 12 after 6
    assert all(0.0 <= r <= 2e-4 for r in rates)
    assert rates[0] == 2e-4 and rates[-1] < rates[0]


def test_cyclegan_stopped_and_resumed_equals_an_uninterrupted_run(tmp_path, masks):  # noqa: F811
    def data():
        return HistoDataModule(
            synthetic=SyntheticFolder(masks),
            synthetic_ratio=1.0,
            unpaired_real=True,
            patch_size=64,
            patches_per_epoch=4,
            batch_size=2,
        )

    L.seed_everything(0)
    straight = tiny_cyclegan()
    run(tmp_path / "a", straight, data(), max_epochs=2)

    L.seed_everything(0)
    first = tiny_cyclegan()
    trainer = run(tmp_path / "b", first, data(), callbacks=[StopAfterFirstEpoch()], max_epochs=2)
    assert trainer.current_epoch == 1  # the same 2-epoch budget, interrupted after one epoch
    trainer.save_checkpoint(tmp_path / "one.ckpt")
    L.seed_everything(123)  # a different process state: only the checkpoint may carry state over
    resumed = tiny_cyclegan()
    run(tmp_path / "c", resumed, data(), ckpt_path=tmp_path / "one.ckpt", max_epochs=2)

    for name, value in weights(straight).items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert len(resumed.fake_image_pool) == len(straight.fake_image_pool)
    n = len(straight.fake_image_pool)
    assert torch.equal(
        straight.fake_image_pool.stored["image"][:n], resumed.fake_image_pool.stored["image"][:n]
    )


def test_an_extra_stateful_helper_comes_back_with_the_pools(tmp_path, masks):  # noqa: F811
    module = tiny_cyclegan()
    extra = ReplayBuffer(4, seed=3)
    extra.push(value=torch.arange(6.0)[:, None])
    module.register_state("extra", extra)
    data = HistoDataModule(
        synthetic=SyntheticFolder(masks),
        synthetic_ratio=1.0,
        unpaired_real=True,
        patch_size=64,
        patches_per_epoch=4,
        batch_size=2,
    )
    trainer = run(tmp_path, module, data, max_epochs=1)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    saved = torch.load(tmp_path / "m.ckpt", weights_only=False)["module_state"]
    assert set(saved) == {"fake_image_pool", "fake_mask_pool", "extra"}
    expected_draw = extra.sample(3, torch.device("cpu"))["value"]

    restored = tiny_cyclegan()
    restored_extra = ReplayBuffer(1, seed=0)
    restored.register_state("extra", restored_extra)
    restored.on_load_checkpoint(torch.load(tmp_path / "m.ckpt", weights_only=False))
    assert len(restored_extra) == 4  # capacity, samples and generator came back
    draw = restored_extra.sample(3, torch.device("cpu"))["value"]
    assert torch.equal(draw, expected_draw)  # its random stream continues where it was saved
    assert len(restored.fake_image_pool) == len(module.fake_image_pool) > 0
