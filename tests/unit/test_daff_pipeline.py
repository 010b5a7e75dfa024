"""experiments/daff_pipeline.sh passes its extra arguments so that the export still happens.

A stand-in ``histo-gan`` records every call; the pipeline itself runs unchanged.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXPORT = "--trainer.callbacks+=histo_gan.callbacks.SyntheticExport"


def _stand_in(path: Path, log: Path) -> Path:
    path.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> "{log}"\n')
    path.chmod(0o755)
    return path


def test_a_layer_that_replaces_the_callbacks_comes_before_the_export(tmp_path):
    log = tmp_path / "calls.txt"
    env = dict(
        os.environ,
        HISTO_GAN=str(_stand_in(tmp_path / "histo-gan", log)),
        PYTHON=str(_stand_in(tmp_path / "python", tmp_path / "python_calls.txt")),
        DAFF_OUT=str(tmp_path / "out"),
    )
    layer = "experiments/protocols/daff_curve_cpu.yaml"  # sets trainer.callbacks (a new list)
    subprocess.run(
        ["bash", "experiments/daff_pipeline.sh", "pix2pixhd", "--config", layer],
        cwd=REPO, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    calls = log.read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["synthesize", "fit", "predict", "fit", "predict"]
    for k, call in zip((1, 2), [c for c in calls if c.startswith("predict")]):
        words = call.split()
        assert words.index(layer) < words.index(EXPORT), call
        assert f"--trainer.callbacks.method=pix2pixhd-stage{k}" in words
    for call in (c for c in calls if c.startswith("fit")):
        assert layer in call.split() and EXPORT not in call
