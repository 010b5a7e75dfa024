"""Long runs in chunks: a fit stopped by the chunk timer writes last.ckpt and resumes to its
budget; step-budgeted runs show steps, not "Epoch 7/-2"."""

from __future__ import annotations

import json

import lightning as L
import torch
from torch.utils.data import DataLoader

from histo_gan.callbacks import StepProgressBar
from histo_gan.cli import main
from histo_gan.modules import SegmenterModule
from histo_gan.networks import SmpUnet
from tests.integration.patch_probe import probe_argument, read_digests


def _fit(tmp_path, monkeypatch, *extra: str) -> dict:
    summary = tmp_path / "summary.json"
    monkeypatch.setenv("HISTO_GAN_SUMMARY", str(summary))
    code = main(
        [
            "fit",
            "--config",
            "conf/experiment/baseline_unet_tiny.yaml",
            "--name",
            "chunked",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.max_epochs=-1",
            "--trainer.max_steps=6",
            "--trainer.limit_val_batches=0",
            "--trainer.logger=false",
            "--trainer.callbacks=[]",
            "--data.patches_per_epoch=12",
            *extra,
        ]
    )
    assert code == 0
    return json.loads(summary.read_text())


def test_a_chunk_stops_early_and_the_next_one_finishes_the_budget(tmp_path, monkeypatch, repo_root):
    monkeypatch.chdir(repo_root)
    first = _fit(tmp_path, monkeypatch, "--max_chunk_minutes=0.00001")
    assert first["stopped_by_chunk_timer"] is True
    assert 1 <= first["global_step"] < 6
    last = tmp_path / "chunked" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == first["global_step"]
    second = _fit(tmp_path, monkeypatch, "--ckpt_path=last")
    assert second["stopped_by_chunk_timer"] is False
    assert second["global_step"] == 6 and second["max_steps"] == 6
    assert (tmp_path / "chunked" / "version_1" / "checkpoints" / "last.ckpt").is_file()


def test_a_chunk_stopped_inside_an_epoch_resumes_that_epoch(tmp_path, monkeypatch, repo_root):
    # 3 epochs of 2 batches: the first chunk stops after one batch; the resumed run must train
    # the epoch's second batch, not skip to the next epoch (6 steps in all, not 5) and not
    # train the epoch's first batch again: the patches of an uninterrupted run, in its order
    monkeypatch.chdir(repo_root)
    epochs = ("--trainer.max_epochs=3", "--trainer.max_steps=-1")
    chunked = probe_argument(tmp_path / "chunked_keys")
    whole = probe_argument(tmp_path / "whole_keys")
    first = _fit(tmp_path, monkeypatch, *epochs, chunked, "--max_chunk_minutes=0.00001")
    assert first["stopped_by_chunk_timer"] is True and first["global_step"] == 1
    second = _fit(tmp_path, monkeypatch, *epochs, chunked, "--ckpt_path=last")
    assert second["stopped_by_chunk_timer"] is False
    assert second["global_step"] == 6
    (tmp_path / "whole").mkdir()
    uninterrupted = _fit(tmp_path / "whole", monkeypatch, *epochs, whole)
    assert uninterrupted["global_step"] == 6
    resumed = read_digests(tmp_path / "chunked_keys")["rank0"]
    assert len(resumed) == 36 and resumed == read_digests(tmp_path / "whole_keys")["rank0"]


class BarProbe(L.Callback):
    def __init__(self, bar: StepProgressBar) -> None:
        self.bar, self.seen = bar, []

    def on_train_batch_end(self, trainer, *args) -> None:
        task = self.bar.progress.tasks[self.bar.train_progress_bar_id]
        self.seen.append((task.total, task.completed, task.description))


def test_a_step_budget_shows_steps_of_max_steps(tmp_path):
    label = torch.zeros(2, 32, 32, dtype=torch.int32)
    label[:, 8:16, 8:16] = 1
    batches = [{"image": torch.rand(2, 3, 32, 32), "label": label}] * 2  # 2 batches an epoch
    bar = StepProgressBar()
    probe = BarProbe(bar)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=-1,
        max_steps=5,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[bar, probe],
        default_root_dir=tmp_path,
    )
    trainer.fit(
        SegmenterModule(SmpUnet("resnet18", 3, (16, 8, 4))), DataLoader(batches, batch_size=None)
    )
    assert [total for total, _, _ in probe.seen] == [5] * 5
    assert [completed for _, completed, _ in probe.seen] == [1, 2, 3, 4, 5]
    assert all("Step" in description and "-2" not in description for *_, description in probe.seen)
