"""experiments/protocols/converged/resolution.py: each comparison of a protocol's runs split
into its test-image and training-seed noise (the estimators: tests/unit/test_seed_noise.py)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.test_report import rows, write_run

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location(
    "resolution", REPO / "experiments" / "protocols" / "converged" / "resolution.py"
)
resolution = importlib.util.module_from_spec(SPEC)
sys.modules["resolution"] = resolution  # dataclasses look their module up while it loads
SPEC.loader.exec_module(resolution)


def test_protocol_runs_give_each_comparison_its_noise(tmp_path):
    real = [[0.40, 0.50, 0.60], [0.42, 0.52, 0.62]]  # seed shift 0.02, no per-image noise
    mixed = [[0.45, 0.50, 0.70], [0.47, 0.52, 0.72]]
    for name, table in (("real", real), ("mixed", mixed)):
        for seed, values in enumerate(table):
            write_run(
                tmp_path / "runs" / f"{name}_s{seed}",
                seed=seed,
                train=["a", "b"],
                rows=rows(values),
                synthetic="runs/protocols/synthetic/hou" if name == "mixed" else None,
                ratio=0.5,
            )
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text(yaml.safe_dump({"runs": ["runs/*"], "reference": {"data": "real"}}))
    assert resolution.main(["--protocol", str(protocol), "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "resolution.json").read_text())
    assert result["noise"]["shared"] == pytest.approx(0.0002)  # var of (0, 0.02), both arms
    assert result["noise"]["per_image"] == pytest.approx(0.0, abs=1e-12)
    (only,) = result["comparisons"]
    assert (only["arm"], only["reference"]) == ("Segmenter, real+hou, 2", "Segmenter, real, 2")
    assert only["difference"] == pytest.approx((0.05 + 0.0 + 0.10) / 3)
    # per-image differences (0.05, 0, 0.10): var 0.0025 -> images part 0.0025 / 3
    assert only["se_images"] == pytest.approx(math.sqrt(0.0025 / 3))
    assert only["se_training"] == pytest.approx(math.sqrt(0.0002 * (1 / 2 + 1 / 2)))
    assert (
        "| Segmenter, real+hou, 2 | Segmenter, real, 2 | 2 vs 2 | 3 |"
        in (tmp_path / "out" / "resolution.md").read_text()
    )
