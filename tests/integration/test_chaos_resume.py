"""Chaos: ``fit`` killed (SIGKILL) at random points and resumed with ``--ckpt_path last``
reaches the epoch count of an uninterrupted run, and every ``last.ckpt`` left loads.

The kill points are drawn in training progress (a random number of epochs past the last
checkpoint, then a random moment inside the next epoch), not in seconds, so that a fast machine
cannot finish the run before a kill lands and a slow one still kills mid-run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "conf" / "experiment" / "baseline_unet_tiny.yaml")
EPOCHS, STEPS_PER_EPOCH, KILLS = 10, 2, 3
FIT = [
    sys.executable,
    "-m",
    "histo_gan.cli",
    "fit",
    "--config",
    CONFIG,
    "--trainer.logger=false",
    f"--trainer.max_epochs={EPOCHS}",
    f"--data.patches_per_epoch={6 * STEPS_PER_EPOCH}",
    "--data.batch_size=6",
    "--trainer.enable_progress_bar=false",
]


def run_folders(cwd: Path) -> list[Path]:
    found = (cwd / "runs" / "baseline_unet_tiny").glob("version_*")
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def start(cwd: Path, resume: bool) -> subprocess.Popen:
    return subprocess.Popen(
        FIT + (["--ckpt_path", "last"] if resume else []),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )


def saved_epoch(run: Path) -> int:
    """The epoch of ``run``'s ``last.ckpt`` (-1 while it has none)."""
    last = run / "checkpoints" / "last.ckpt"
    return torch.load(last, weights_only=False)["epoch"] if last.exists() else -1


def wait_for_epoch(cwd: Path, runs_before: int, process: subprocess.Popen, epoch: int) -> None:
    """Wait until the run started after ``runs_before`` has begun training and, for
    ``epoch >= 0``, has saved a ``last.ckpt`` of at least that epoch."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the run ended (rc {process.returncode}) before its kill"
        folders = run_folders(cwd)
        if len(folders) > runs_before and (folders[-1] / "config.yaml").exists():
            if saved_epoch(folders[-1]) >= epoch:
                return
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of epoch {epoch} within 180 s")


@pytest.mark.slow
def test_fit_killed_at_random_points_resumes_to_the_full_run(tmp_path, capsys):
    rng = random.Random(0)
    kill_points, reached = [], -1
    for attempt in range(KILLS):
        before = len(run_folders(tmp_path))
        process = start(tmp_path, resume=attempt > 0)
        # 0 epochs past the last checkpoint kills before this run saves anything; the last kill
        # always comes after a checkpoint of its own run, so resuming from one is exercised
        epochs_on = rng.randint(1 if attempt == KILLS - 1 else 0, 2)
        target = reached + epochs_on if epochs_on else -1
        wait_for_epoch(tmp_path, before, process, target)
        delay = rng.uniform(0.0, 0.3)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        kill_points.append((target, round(delay, 2)))
        for last in tmp_path.glob("runs/*/version_*/checkpoints/last.ckpt"):
            reached = max(reached, torch.load(last, weights_only=False)["epoch"])  # never torn
    assert reached < EPOCHS - 1, "the kills left nothing for the final run to resume"
    final = start(tmp_path, resume=True)
    assert final.wait(timeout=600) == 0
    final_run = run_folders(tmp_path)[-1]
    resumed_from = yaml.safe_load((final_run / "config.yaml").read_text())["ckpt_path"]
    assert resumed_from and resumed_from.endswith("checkpoints/last.ckpt")  # not from scratch
    last = torch.load(final_run / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == EPOCHS - 1 and last["global_step"] == EPOCHS * STEPS_PER_EPOCH
    with capsys.disabled():
        print(f"\nchaos: kills at (checkpoint epoch, seconds after it) {kill_points}")
