"""Chaos: ``fit`` killed (SIGKILL) at random points and resumed with ``--ckpt_path last``
reaches the epoch count of an uninterrupted run, and every ``last.ckpt`` left loads."""

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
EPOCHS, STEPS_PER_EPOCH, KILLS = 3, 2, 4
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


@pytest.mark.slow
def test_fit_killed_at_random_points_resumes_to_the_full_run(tmp_path, capsys):
    rng = random.Random(0)
    kill_points = []
    for attempt in range(KILLS):
        before = len(run_folders(tmp_path))
        process = start(tmp_path, resume=attempt > 0)
        # training starts once the new run folder has its config.yaml
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            folders = run_folders(tmp_path)
            started = len(folders) > before and (folders[-1] / "config.yaml").exists()
            # the last kill waits for a checkpoint of its run, so that resuming from one is
            # exercised however slow the machine is
            if started and (
                attempt < KILLS - 1 or (folders[-1] / "checkpoints" / "last.ckpt").exists()
            ):
                break
            time.sleep(0.05)
        delay = rng.uniform(0.0, 4.0)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kill_points.append(round(delay, 2))
        process.wait()
        for last in tmp_path.glob("runs/*/version_*/checkpoints/last.ckpt"):
            torch.load(last, weights_only=False)  # never torn
    final = start(tmp_path, resume=True)
    assert final.wait(timeout=600) == 0
    final_run = run_folders(tmp_path)[-1]
    resumed_from = yaml.safe_load((final_run / "config.yaml").read_text())["ckpt_path"]
    assert resumed_from and resumed_from.endswith("checkpoints/last.ckpt")  # not from scratch
    # the newest last.ckpt: the final run's, or, when the runs before it already trained to the
    # end, the one it resumed from (a resumed finished run has no epoch left to save)
    lasts = [f / "checkpoints" / "last.ckpt" for f in run_folders(tmp_path)]
    last = torch.load([p for p in lasts if p.exists()][-1], weights_only=False)
    assert last["epoch"] == EPOCHS - 1 and last["global_step"] == EPOCHS * STEPS_PER_EPOCH
    with capsys.disabled():
        print(f"\nchaos: {len(kill_points)} kills at {kill_points} s after training started")
    assert len(kill_points) >= KILLS - 1  # a kill may come after a (fast) run already ended
