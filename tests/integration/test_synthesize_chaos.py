"""Chaos: ``synthesize`` is killed (SIGKILL) at random points while it writes and resumed each
time; the dataset it ends with must be byte-identical to an uninterrupted run's, every file
(manifest, header and sample grid included) and no leftovers (temporaries, lock)."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import time
from pathlib import Path

from histo_gan.data.sources import bundled_sample_dir

SOURCE = bundled_sample_dir() / "images"
REPO = Path(__file__).resolve().parents[2]
N, SIZE, SEED = 80, 64, 5
KILLS = 10


def command(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "histo_gan.synthesis.cli",
        "--source",
        str(SOURCE),
        "--out",
        str(out),
        "--n",
        str(N),
        "--size",
        str(SIZE),
        "--seed",
        str(SEED),
    ]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root``, hidden ones included, by content."""
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def samples_done(out: Path) -> int:
    manifest = out / "manifest.jsonl"
    return manifest.read_bytes().count(b"\n") if manifest.exists() else 0


def start_and_wait_for_lock(out: Path) -> tuple[subprocess.Popen, float]:
    """Start a run; return it once it holds the dataset's lock (or has ended), and the time."""
    process = subprocess.Popen(command(out), cwd=REPO, stdout=subprocess.DEVNULL)
    while process.poll() is None:
        try:
            if json.loads((out / ".lock").read_text())["pid"] == process.pid:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.005)
    return process, time.monotonic()


def test_killed_at_random_points_resumes_to_identical_bytes(tmp_path):
    reference = tmp_path / "reference"
    process, locked = start_and_wait_for_lock(reference)
    assert process.wait() == 0
    per_sample = (time.monotonic() - locked) / N

    # a kill point: a random number of written samples (0: while opening and preparing, N:
    # while drawing the grid), then a random part of one more sample's time, so that kills
    # land anywhere in the writing of a sample
    rng = random.Random(10)
    out = tmp_path / "chaos"
    kills = []  # samples in the manifest at each kill
    for target in sorted(rng.sample(range(N + 1), KILLS)):
        process, _ = start_and_wait_for_lock(out)
        while process.poll() is None and samples_done(out) < target:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, per_sample))
        if process.poll() is not None:
            break
        process.kill()
        process.wait()
        kills.append(samples_done(out))
    assert subprocess.run(command(out), cwd=REPO, stdout=subprocess.DEVNULL).returncode == 0

    print(f"synthesize killed {len(kills)} times, with {kills} of {N} samples written")
    assert len(kills) == KILLS and len([k for k in kills if 0 < k < N]) >= KILLS // 2, kills
    assert snapshot(out) == snapshot(reference)
