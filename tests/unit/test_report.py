"""histo-gan report: arms from run folders, table numbers against a hand computation, and the
committed tables rebuilt from committed run summaries."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import yaml

from histo_gan.cli import main as cli_main
from histo_gan.report import build_table, load_run, main, paired_difference

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "report"


def write_run(folder: Path, *, seed: int, train: list[str], rows: list[dict],
              synthetic: str | None = None, ratio: float = 0.0,
              model: str = "histo_gan.modules.SegmenterModule") -> Path:  # fmt: skip
    """A run folder as `histo-gan test` leaves it (config reduced to the keys report reads)."""
    folder.mkdir(parents=True)
    data = {"patch_size": 64}
    if synthetic:
        data["synthetic"] = {"class_path": "histo_gan.data.SyntheticFolder",
                             "init_args": {"root": synthetic}}  # fmt: skip
        data["synthetic_ratio"] = ratio
    config = {"seed_everything": seed, "model": {"class_path": model}, "data": data}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "split.json").write_text(json.dumps({"train": train, "val": [], "test": []}))
    metrics = [k for k in rows[0] if k not in ("image_id", "organ")]
    summary = {"num_images": len(rows),
               "per_image": {m: sum(r[m] for r in rows) / len(rows) for m in metrics}}  # fmt: skip
    (folder / "test_metrics.json").write_text(json.dumps(summary))
    with open(folder / "test_metrics_per_image.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def rows(values: list[float], organs=("liver", "liver", "colon")) -> list[dict]:
    return [{"image_id": f"img{k}", "organ": organs[k], "aji": v} for k, v in enumerate(values)]


def test_arms_are_inferred_from_config_and_split(tmp_path):
    real = load_run(write_run(tmp_path / "a", seed=3, train=["x", "y"], rows=rows([0.1, 0.2, 0.3])))
    assert (real.arm.model, real.arm.data, real.arm.budget, real.seed) == (
        "Segmenter",
        "real",
        "2",
        3,
    )
    mix = load_run(write_run(tmp_path / "b", seed=0, train=["x"], rows=rows([0.1] * 3),
                             synthetic="data/syn/hou_3k", ratio=0.5))  # fmt: skip
    assert (mix.arm.data, mix.arm.budget) == ("real+hou_3k", "1")
    only = load_run(write_run(tmp_path / "c", seed=0, train=["x"], rows=rows([0.1] * 3),
                              synthetic="data/syn/hou_3k", ratio=1.0,
                              model="histo_gan.modules.SpectralNormCGANSegmenterModule"))  # fmt: skip
    assert (only.arm.model, only.arm.data, only.arm.budget) == (
        "SpectralNormCGANSegmenter",
        "hou_3k",
        "0",
    )
    assert load_run(tmp_path / "c", {"budget": "none", "seed": 7}).arm.budget == "none"


def test_table_numbers_match_a_hand_computation(tmp_path):
    # real, budget 2: seed 0 -> per-image mean 0.4, seed 1 -> 0.6
    write_run(tmp_path / "r0", seed=0, train=["x", "y"], rows=rows([0.3, 0.4, 0.5]))
    write_run(tmp_path / "r1", seed=1, train=["x", "y"], rows=rows([0.5, 0.6, 0.7]))
    # real+hou, budget 2, seeds 0 and 1; per image averaged over seeds: 0.45, 0.60, 0.90
    write_run(tmp_path / "h0", seed=0, train=["x", "y"], rows=rows([0.4, 0.6, 0.8]),
              synthetic="syn/hou", ratio=0.5)  # fmt: skip
    write_run(tmp_path / "h1", seed=1, train=["x", "y"], rows=rows([0.5, 0.6, 1.0]),
              synthetic="syn/hou", ratio=0.5)  # fmt: skip
    runs = [load_run(tmp_path / n) for n in ("h1", "r0", "h0", "r1")]
    table, organs = build_table(runs, ["aji"], {"data": "real"}, n_bootstrap=500)
    real, hou = table
    assert (real["data"], hou["data"]) == ("real", "real+hou")  # real first
    assert real["aji_mean"] == pytest.approx(0.5)
    assert real["aji_spread"] == pytest.approx(math.sqrt(0.02))  # sd of (0.4, 0.6), ddof 1
    assert real["reference"] == "self" and math.isnan(real["aji_diff"])
    assert hou["aji_mean"] == pytest.approx(0.65)  # seeds 0.6 and 0.7
    assert hou["aji_spread"] == pytest.approx(math.sqrt(0.005))
    # real per image over seeds: 0.4, 0.5, 0.6 -> differences 0.05, 0.10, 0.30
    assert hou["aji_diff"] == pytest.approx(0.15)
    assert 0.05 - 1e-9 <= hou["aji_diff_low"] < 0.15 < hou["aji_diff_high"] <= 0.30 + 1e-9
    assert hou["paired_images"] == 3 and hou["reference"] == "Segmenter | real | 2"
    liver = [o for o in organs if o["data"] == "real+hou" and o["organ"] == "liver"][0]
    assert liver["aji"] == pytest.approx((0.4 + 0.6 + 0.5 + 0.6) / 4) and liver["images"] == 2


def test_bootstrap_interval_is_seeded_and_collapses_for_constant_differences():
    arm, ref = {"a": 0.5, "b": 0.7, "c": 0.2}, {"a": 0.4, "b": 0.6, "c": 0.1}
    assert paired_difference(arm, ref, 100, 0, 0.95)[:3] == pytest.approx((0.1, 0.1, 0.1))
    ref2 = {"a": 0.1, "b": 0.6, "c": 0.3, "z": 0.0}  # z is not shared
    first = paired_difference(arm, ref2, 1000, 0, 0.95)
    assert first == paired_difference(arm, ref2, 1000, 0, 0.95) and first[3] == 3
    assert first[0] == pytest.approx((0.4 + 0.1 - 0.1) / 3)
    assert -0.1 - 1e-9 <= first[1] < first[0] < first[2] <= 0.4 + 1e-9


def test_folds_are_joined_and_overlapping_folds_are_refused(tmp_path):
    write_run(tmp_path / "f1", seed=0, train=["x"], rows=rows([0.2, 0.4, 0.6]))
    fold = [{"image_id": "img9", "organ": "kidney", "aji": 0.8}]
    write_run(tmp_path / "f2", seed=0, train=["y"], rows=fold)
    override = {"budget": "loo"}
    runs = [load_run(tmp_path / n, override) for n in ("f1", "f2")]
    (row,), _ = build_table(runs, ["aji"], {"data": "real"})
    assert row["images"] == 4 and row["aji_mean"] == pytest.approx(0.5)
    write_run(tmp_path / "f3", seed=0, train=["z"], rows=rows([0.1, 0.1, 0.1]))
    with pytest.raises(ValueError, match="already tested"):
        build_table([*runs, load_run(tmp_path / "f3", override)], ["aji"], {"data": "real"})


def test_cli_writes_tables_and_plots(tmp_path):
    for seed in (0, 1):
        for budget, train in (("2", ["x", "y"]), ("4", ["w", "x", "y", "z"])):
            base = 0.1 * len(train) + 0.05 * seed
            write_run(tmp_path / "runs" / f"b{budget}_s{seed}", seed=seed, train=train,
                      rows=rows([base, base + 0.1, base + 0.2]))  # fmt: skip
    out = tmp_path / "out"
    assert cli_main(["report", str(tmp_path / "runs"), "--out", str(out), "--metrics", "aji"]) == 0
    table = list(csv.DictReader(open(out / "table.csv")))
    assert [(r["budget"], r["aji_mean"]) for r in table] == [("2", "0.3250"), ("4", "0.5250")]
    assert (out / "budget_aji.png").stat().st_size > 1000
    assert (out / "organs_aji.png").stat().st_size > 1000
    assert "Segmenter | real | 2" in (out / "runs.csv").read_text().replace(",", " | ")
    assert cli_main(["report", str(tmp_path / "nothing"), "--out", str(out)]) == 2


def _protocols() -> list[Path]:
    root = Path(__file__).resolve().parents[2]
    return sorted(
        [
            *FIXTURES.glob("protocol.yaml"),
            *(root / "experiments" / "results").rglob("protocol.yaml"),
        ]
    )


@pytest.mark.parametrize("protocol", _protocols(), ids=lambda p: p.parent.name)
def test_committed_tables_are_rebuilt_from_committed_runs(protocol, tmp_path):
    """CI check: every committed protocol's tables equal what `report` makes of its runs."""
    assert main(["--protocol", str(protocol), "--out", str(tmp_path), "--no-plots"]) == 0
    out = protocol.parent / yaml.safe_load(protocol.read_text()).get("out", ".")
    for name in ("table.md", "table.csv", "per_organ.csv"):
        assert (tmp_path / name).read_text() == (out / name).read_text(), name
