"""experiments/protocols/converged/annealed_budget.py: the budget from complete annealed runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location(
    "annealed_budget", REPO / "experiments" / "protocols" / "converged" / "annealed_budget.py"
)
annealed_budget = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(annealed_budget)

NETWORK = {
    "class_path": "histo_gan.networks.SmpUnet",
    "init_args": {"encoder_name": "resnet18", "encoder_depth": 4},
}


def write_trial(folder: Path, steps: int, seed: int, val_aji: float, done: int | None = None):
    folder.mkdir(parents=True)
    config = {
        "seed_everything": seed,
        "trainer": {"max_steps": steps, "max_epochs": -1},
        "data": {"patch_size": 192, "batch_size": 8, "patches_per_epoch": 1600},
        "model": {"init_args": {"network": NETWORK}},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    summary = {"val/aji": val_aji, "global_step": steps if done is None else done}
    (folder / "summary_fit.json").write_text(json.dumps(summary))
    return folder


def run(tmp_path, points, tolerance="0.01"):
    folders = [
        write_trial(tmp_path / f"t{k}", steps, seed, aji)
        for k, (steps, seed, aji) in enumerate(points)
    ]
    out = tmp_path / "out"
    annealed_budget.main([*map(str, folders), "--out", str(out), "--tolerance", tolerance])
    return json.loads((out / "budget.json").read_text())


def test_a_gain_beyond_the_tolerance_moves_the_budget_to_the_longest_run(tmp_path):
    # means: 2800 -> (0.50 + 0.51) / 2 = 0.505, 5600 -> 0.535; gain 0.03 > 0.01
    record = run(tmp_path, [(2800, 0, 0.50), (2800, 1, 0.51), (5600, 0, 0.535)])
    assert record["steps"] == [2800, 5600] and record["mean_val_aji"] == [0.505, 0.535]
    assert record["budget"] == 5600 and not record["flattened"]
    assert record["last_gain"] == pytest.approx(0.03)
    assert record["network"] == "SmpUnet resnet18 depth 4" and record["batch_size"] == 8
    assert (tmp_path / "out" / "budget_curve.png").is_file()


def test_a_longer_run_within_the_tolerance_confirms_the_shorter_budget(tmp_path):
    # 2800: 0.50, 5600: 0.535, 8400: 0.540 -> plateau 0.540; 5600 is within 0.01 of it;
    # the last gain 0.005 <= 0.01: flattened
    record = run(tmp_path, [(2800, 0, 0.50), (5600, 0, 0.535), (8400, 0, 0.540)])
    assert record["budget"] == 5600 and record["flattened"]
    assert record["plateau"] == 0.54


def test_an_unfinished_run_is_refused_with_its_folder(tmp_path):
    folder = write_trial(tmp_path / "cut", 5600, 0, 0.5, done=3000)
    write_trial(tmp_path / "whole", 2800, 0, 0.5)
    with pytest.raises(SystemExit, match="cut: the fit stopped at step 3000 of its budget 5600"):
        annealed_budget.main([str(folder), str(tmp_path / "whole"), "--out", str(tmp_path / "o")])
