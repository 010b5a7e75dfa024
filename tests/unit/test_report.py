"""histo-gan report: arms from run folders, table numbers against a hand computation, and the
committed tables rebuilt from committed run summaries."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from histo_gan import report
from histo_gan.cli import main as cli_main
from histo_gan.report import (
    Training,
    build_table,
    load_run,
    main,
    paired_difference,
    plateau_status,
    synthetic_root,
    synthetic_set_notes,
    training_of,
)
from histo_gan.sweep_file import expand_trials, load_sweep, trial_command

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "report"


def write_run(
    folder: Path,
    *,
    seed: int,
    train: list[str],
    rows: list[dict],
    synthetic: str | None = None,
    ratio: float = 0.0,
    model: str = "histo_gan.modules.SegmenterModule",
) -> Path:
    """A run folder as `histo-gan test` leaves it (config reduced to the keys report reads)."""
    folder.mkdir(parents=True)
    data = {"patch_size": 64}
    if synthetic:
        data["synthetic"] = {
            "class_path": "histo_gan.data.SyntheticFolder",
            "init_args": {"root": synthetic},
        }
        data["synthetic_ratio"] = ratio
    config = {"seed_everything": seed, "model": {"class_path": model}, "data": data}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "split.json").write_text(json.dumps({"train": train, "val": [], "test": []}))
    metrics = [k for k in rows[0] if k not in ("image_id", "organ")]
    summary = {
        "num_images": len(rows),
        "per_image": {m: sum(r[m] for r in rows) / len(rows) for m in metrics},
    }
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
    mix = load_run(
        write_run(
            tmp_path / "b",
            seed=0,
            train=["x"],
            rows=rows([0.1] * 3),
            synthetic="data/syn/hou_3k",
            ratio=0.5,
        )
    )
    assert (mix.arm.data, mix.arm.budget) == ("real+hou_3k", "1")
    only = load_run(
        write_run(
            tmp_path / "c",
            seed=0,
            train=["x"],
            rows=rows([0.1] * 3),
            synthetic="data/syn/hou_3k",
            ratio=1.0,
            model="histo_gan.modules.SpectralNormCGANSegmenterModule",
        )
    )
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
    write_run(
        tmp_path / "h0",
        seed=0,
        train=["x", "y"],
        rows=rows([0.4, 0.6, 0.8]),
        synthetic="syn/hou",
        ratio=0.5,
    )
    write_run(
        tmp_path / "h1",
        seed=1,
        train=["x", "y"],
        rows=rows([0.5, 0.6, 1.0]),
        synthetic="syn/hou",
        ratio=0.5,
    )
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
    low, high = hou["aji_diff_images_low"], hou["aji_diff_images_high"]
    assert 0.05 - 1e-9 <= low < 0.15 < high <= 0.30 + 1e-9
    # a run's shared shift, method of moments (histo_gan.metrics.seed_noise): real has
    # within-image variance 0.02 and seed means 0.4, 0.6 (variance 0.02) -> s_u^2 = 0.02;
    # real+hou has within 0.025 / 3 and seed means 0.6, 0.7 (variance 0.005) -> s_e^2 = 0.005,
    # s_u^2 = 0.005 - 0.005 / 3; pooled (one degree of freedom each): their mean
    shared = (0.02 + 0.01 / 3) / 2
    assert hou["aji_diff_run_sd"] == pytest.approx(math.sqrt(shared * (1 / 2 + 1 / 2)))
    assert real["aji_run_sd"] == pytest.approx(math.sqrt(shared / 2))
    # the interval with the shift is the wider one, on both sides
    assert hou["aji_diff_low"] < low and hou["aji_diff_high"] > high
    assert hou["paired_images"] == 3 and hou["reference"] == "Segmenter | real | 2"
    liver = [o for o in organs if o["data"] == "real+hou" and o["organ"] == "liver"][0]
    assert liver["aji"] == pytest.approx((0.4 + 0.6 + 0.5 + 0.6) / 4) and liver["images"] == 2


def test_reference_rules_are_tried_in_order(tmp_path):
    """A set alone (budget 0) has no real-only arm of its budget: the second rule compares it
    with real only at 2 labels; an arm whose first rule matches keeps that reference."""
    write_run(tmp_path / "r", seed=0, train=["x", "y"], rows=rows([0.3, 0.4, 0.5]))
    write_run(tmp_path / "r1", seed=0, train=["x"], rows=rows([0.1, 0.1, 0.1]))
    for name, values, ratio in (("h", [0.2, 0.2, 0.2], 0.5), ("a", [0.1, 0.5, 0.9], 1.0)):
        write_run(
            tmp_path / name,
            seed=0,
            train=["x"],
            rows=rows(values),
            synthetic="syn/hou",
            ratio=ratio,
        )
    runs = [load_run(tmp_path / n) for n in ("r", "r1", "h", "a")]
    rules = [{"data": "real"}, {"data": "real", "budget": "2"}]
    table, _ = build_table(runs, ["aji"], rules, n_bootstrap=200)
    by_arm = {(r["data"], r["budget"]): r for r in table}
    alone, mixed = by_arm[("hou", "0")], by_arm[("real+hou", "1")]
    assert alone["reference"] == "Segmenter | real | 2"
    assert alone["aji_diff"] == pytest.approx((-0.2 + 0.1 + 0.4) / 3)
    assert mixed["reference"] == "Segmenter | real | 1" and mixed["aji_diff"] == pytest.approx(0.1)
    # one rule only: the set alone has no reference and no difference
    table, _ = build_table(runs, ["aji"], {"data": "real"}, n_bootstrap=200)
    alone = {(r["data"], r["budget"]): r for r in table}[("hou", "0")]
    assert alone["reference"] == "" and math.isnan(alone["aji_diff"])


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
            write_run(
                tmp_path / "runs" / f"b{budget}_s{seed}",
                seed=seed,
                train=train,
                rows=rows([base, base + 0.1, base + 0.2]),
            )
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
    names = ["table.md", "table.csv", "per_organ.csv"] + (
        ["missing.md"] * (out / "missing.md").exists()
    )
    for name in names:
        assert (tmp_path / name).read_text() == (out / name).read_text(), name


# --- training budget, plateau, expected runs, the label-budget plot ----------------------------

PLATEAU = {
    "budget": 800,
    "plateau": 0.6,
    "flattened": True,
    "tolerance": 0.01,
    "network": "SmpUnet resnet18 depth 4",
    "patch_size": 192,
    "batch_size": 8,
}


def write_trained_run(
    folder: Path,
    *,
    seed: int,
    steps: int = -1,
    epochs: int = 4,
    patch: int = 192,
    depth: int = 4,
    fit_seconds: float | None = None,
    values=(0.5, 0.6, 0.7),
) -> Path:
    """A run folder whose config states its training budget (and a trial.json with its time)."""
    write_run(folder, seed=seed, train=["x", "y"], rows=rows(list(values)))
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["trainer"] = {"max_steps": steps, "max_epochs": epochs}
    config["data"].update(patch_size=patch, patches_per_epoch=1600, batch_size=8)
    network = {
        "class_path": "histo_gan.networks.SmpUnet",
        "init_args": {"encoder_name": "resnet18", "encoder_depth": depth},
    }
    config["model"]["init_args"] = {"network": network}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    if fit_seconds is not None:
        (folder / "trial.json").write_text(json.dumps({"fit_seconds": fit_seconds}))
    return folder


def test_training_budget_comes_from_max_steps_else_epochs(tmp_path):
    by_steps = load_run(write_trained_run(tmp_path / "a", seed=0, steps=1000, epochs=-1))
    by_epochs = load_run(write_trained_run(tmp_path / "b", seed=0, steps=-1, epochs=3))
    assert (by_steps.training.steps, by_steps.training.batch_size) == (1000, 8)
    assert by_epochs.training.steps == 3 * 1600 // 8  # 600
    assert by_epochs.training.network == "SmpUnet resnet18 depth 4"
    both = {
        "trainer": {"max_steps": 1000, "max_epochs": 2},
        "data": {"patches_per_epoch": 1600, "batch_size": 8},
    }
    assert training_of(both).steps == 400  # the epochs end first
    assert training_of({}).steps is None


def test_plateau_status_of_every_case():
    training = Training(steps=800, batch_size=8, patch_size=192, network=PLATEAU["network"])
    assert plateau_status(training, PLATEAU) == "at plateau"
    assert plateau_status(Training(799, 8, 192, PLATEAU["network"]), PLATEAU) == "below plateau"
    assert plateau_status(training, None) == "unknown"
    assert plateau_status(training, {**PLATEAU, "flattened": False}) == (
        "unknown (curve not flattened)"
    )
    assert plateau_status(Training(5000, 8, 128, PLATEAU["network"]), PLATEAU) == (
        "unknown (patch 128, curve 192)"
    )
    other = Training(5000, 8, 192, "SmpUnet resnet18 depth 3")
    assert plateau_status(other, PLATEAU).startswith("unknown (network SmpUnet resnet18 depth 3")


def test_protocol_plateau_marks_rows_and_reports_fit_minutes(tmp_path):
    (tmp_path / "learning_curve").mkdir()
    (tmp_path / "learning_curve" / "budget.json").write_text(json.dumps(PLATEAU))
    # real (train x, y): 600 steps -> below; real+hou via an arm override at 800 steps -> at
    write_trained_run(tmp_path / "runs" / "short_s0", seed=0, epochs=3, fit_seconds=60)
    write_trained_run(tmp_path / "runs" / "short_s1", seed=1, epochs=3, fit_seconds=180)
    write_trained_run(tmp_path / "runs" / "long_s0", seed=0, steps=800)
    protocol = {
        "runs": ["runs/*"],
        "out": "out",
        "metrics": ["aji"],
        "plateau": "learning_curve/budget.json",
        "arms": [{"runs": ["runs/long_*"], "data": "long"}],
    }
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(protocol))
    assert main(["--protocol", str(tmp_path / "protocol.yaml"), "--no-plots"]) == 0
    table = {r["data"]: r for r in csv.DictReader(open(tmp_path / "out" / "table.csv"))}
    assert (table["real"]["train_steps"], table["real"]["plateau"]) == ("600", "below plateau")
    assert table["real"]["fit_minutes"] == "2.0000"  # mean of 1 and 3 minutes
    assert (table["long"]["train_steps"], table["long"]["plateau"]) == ("800", "at plateau")
    assert table["long"]["fit_minutes"] == ""
    markdown = (tmp_path / "out" / "table.md").read_text()
    assert "| 600 x 8 | below plateau | 2.0 |" in markdown
    assert "Plateau: 800 steps x 8 patches of 192 px for SmpUnet resnet18 depth 4" in markdown
    (tmp_path / "learning_curve" / "budget.json").unlink()
    with pytest.raises(ValueError, match="plateau file does not exist"):
        main(["--protocol", str(tmp_path / "protocol.yaml"), "--no-plots"])


def test_expected_runs_are_listed_with_the_command_that_finishes_them(tmp_path):
    write_trained_run(tmp_path / "runs" / "real_s0", seed=0)
    sweep = {
        "program": "x",
        "method": "grid",
        "metric": {"name": "test/aji"},
        "parameters": {
            "config": {"values": ["mix/real.yaml", "mix/real+hou.yaml"]},
            "seed_everything": {"values": [0, 1]},
        },
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    # the sweep's trials are collected as runs/<config stem>_s<seed>: only real_s0 is there
    protocol = {
        "runs": ["runs/*"],
        "out": "out",
        "metrics": ["aji"],
        "expected": [
            {
                "data": "real",
                "budget": 2,
                "seeds": [0, 1, 2],
                "command": "fit_test.sh --config mix/{data}.yaml --seed_everything={seed}",
            },
            {"sweep": "sweep.yaml", "runs": "runs"},
        ],
    }
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(protocol))
    assert main(["--protocol", str(tmp_path / "protocol.yaml"), "--no-plots"]) == 0
    missing = (tmp_path / "out" / "missing.md").read_text()
    assert missing.startswith("5 of 7 expected runs are missing")
    assert "## data=real, budget=2: 2 of 3 missing" in missing and "seed 1, seed 2" in missing
    assert "    fit_test.sh --config mix/real.yaml --seed_everything=1" in missing
    assert "--seed_everything=0" not in missing  # seed 0 is there
    assert "3 of 4 missing\n\nreal_s1, real+hou_s0, real+hou_s1\n" in missing
    assert "histo-gan sweep " in missing and "--sweep runs/sweeps/sweep" in missing
    assert (
        "5 of 7 expected runs missing (see missing.md)."
        in (tmp_path / "out" / "table.md").read_text()
    )
    # an unfinished run (no per-image rows yet) counts as missing and stays out of the table
    (tmp_path / "runs" / "real_s1").mkdir()
    (tmp_path / "runs" / "real_s1" / "test_metrics.json").write_text("{}")
    assert main(["--protocol", str(tmp_path / "protocol.yaml"), "--no-plots"]) == 0
    assert "real_s1, real+hou_s0" in (tmp_path / "out" / "missing.md").read_text()
    # once every run is there, nothing is missing
    for name, seed in (("real_s1", 1), ("real+hou_s0", 0), ("real+hou_s1", 1), ("x_s2", 2)):
        write_trained_run(tmp_path / "runs2" / name, seed=seed)
    protocol.update(
        runs=["runs2/*"],
        expected=[{**protocol["expected"][0]}, {"sweep": "sweep.yaml", "runs": "runs2"}],
    )
    write_trained_run(tmp_path / "runs2" / "real_s0", seed=0)
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(protocol))
    with pytest.raises(ValueError, match="already tested"):  # real_s0 and real+hou_s0 share an arm
        main(["--protocol", str(tmp_path / "protocol.yaml"), "--no-plots"])


def test_missing_trials_name_the_synthetic_sets_they_read(tmp_path):
    """A sweep's missing trials list the set roots their configs name (the last config that
    sets one wins, a command-line root overrides it) and the protocol's curve of each set."""
    (tmp_path / "pyproject.toml").write_text("")  # the repository the configs are relative to
    (tmp_path / "mix").mkdir()
    for name, root in [("real", None), ("real+hou", "sets/hou"), ("real+gan", "sets/gan")]:
        data = {"synthetic_ratio": 0.5}
        if root:
            data["synthetic"] = {"class_path": "x.Folder", "init_args": {"root": root}}
        (tmp_path / "mix" / f"{name}.yaml").write_text(yaml.safe_dump({"data": data}))
    (tmp_path / "mix" / "none.yaml").write_text("data: {synthetic: null}\n")
    (tmp_path / "base.yaml").write_text(
        yaml.safe_dump({"data": {"synthetic": {"init_args": {"root": "sets/base"}}}})
    )
    sweep = {
        "program": "fit_test.sh",
        "method": "grid",
        "parameters": {
            "config": {"values": ["mix/real.yaml", "mix/real+hou.yaml", "mix/real+gan.yaml"]},
            "seed_everything": {"values": [0]},
        },
        "command": ["${env}", "bash", "${program}", "--config", "base.yaml", "${args}"],
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    write_trained_run(tmp_path / "runs" / "real+gan_s0", seed=0)  # finished: its set not listed
    protocol = {
        "runs": ["runs/*"],
        "out": "out",
        "metrics": ["aji"],
        "synthetic_sets": {"hou": ["curves/a.json", "curves/b.json"]},
        "expected": [{"sweep": "sweep.yaml", "runs": "runs"}],
    }
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(protocol))
    assert main(["--protocol", str(tmp_path / "protocol.yaml"), "--no-plots"]) == 0
    missing = (tmp_path / "out" / "missing.md").read_text()
    lines = [line for line in missing.splitlines() if line.startswith("- `")]
    assert lines == [
        "- `sets/base` (named by base.yaml)",  # real.yaml names none: base.yaml's stands
        "- `sets/hou` (named by mix/real+hou.yaml); generator curve: curves/b.json",
    ]
    spec = load_sweep(tmp_path / "sweep.yaml")
    command = trial_command(spec, expand_trials(spec)[1])
    assert synthetic_root(command, tmp_path) == ("sets/hou", "mix/real+hou.yaml")
    overridden = [*command, "--data.synthetic.init_args.root", "elsewhere/hou"]
    assert synthetic_root(overridden, tmp_path) == ("elsewhere/hou", "its command")
    assert synthetic_root([*command, "--config=mix/none.yaml"], tmp_path) is None  # unset later


def test_a_protocol_with_no_finished_run_writes_what_is_missing(tmp_path):
    protocol = {
        "runs": ["runs/*"],
        "out": "out",
        "metrics": ["aji"],
        "expected": [{"data": "real", "seeds": [0], "command": "run {seed}"}],
    }
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(protocol))
    assert main(["--protocol", str(tmp_path / "protocol.yaml"), "--no-plots"]) == 0
    assert "1 of 1 expected runs are missing" in (tmp_path / "out" / "missing.md").read_text()
    assert "    run 0" in (tmp_path / "out" / "missing.md").read_text()


@pytest.mark.parametrize("reference", ["data=real", 3, [{"data": "real"}, {"seed": 1}]])
def test_a_malformed_reference_names_the_protocol_file(tmp_path, reference):
    protocol = {"runs": ["runs/*"], "out": "out", "reference": reference}
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(protocol))
    with pytest.raises(ValueError, match=r"protocol\.yaml: 'reference' must be"):
        main(["--protocol", str(tmp_path / "protocol.yaml"), "--no-plots"])


def test_arm_interval_is_the_bootstrap_over_images_of_the_seed_mean(tmp_path):
    write_run(tmp_path / "a0", seed=0, train=["x"], rows=rows([0.2, 0.4, 0.6]))
    write_run(tmp_path / "a1", seed=1, train=["x"], rows=rows([0.4, 0.4, 0.4]))
    (row,), _ = build_table(
        [load_run(tmp_path / n) for n in ("a0", "a1")], ["aji"], {"data": "real"}, n_bootstrap=4000
    )
    # per image over seeds: 0.3, 0.4, 0.5; resampled means lie in [0.3, 0.5], around 0.4
    assert row["aji_mean"] == pytest.approx(0.4)
    # a resampled mean is 0.3 (all three draws the 0.3 image) with chance 1/27 = 3.7% > 2.5%:
    # the 2.5% quantile is 0.3, and 0.5 the 97.5% one
    assert (row["aji_low"], row["aji_high"]) == pytest.approx((0.3, 0.5))
    # seed means 0.4 and 0.4: no shared shift (s_u^2 = 0), so nothing is added
    assert row["aji_run_sd"] == 0.0


def test_a_shift_no_image_sees_widens_the_interval_by_its_normal_quantiles():
    """Equal values: every resample has the same mean, so the interval is that of the added
    shift alone, mean +- 1.96 sd."""
    values = np.full(5, 0.4)
    assert report.bootstrap_mean(values, 200, 0, 0.95) == pytest.approx((0.4, 0.4))
    low, high = report.bootstrap_mean(values, 40000, 0, 0.95, shift_sd=0.05)
    assert (low, high) == pytest.approx((0.4 - 1.96 * 0.05, 0.4 + 1.96 * 0.05), abs=0.002)
    # the image draws come first, so the images-only part of a paired difference is unchanged
    arm, ref = {"a": 0.5, "b": 0.7, "c": 0.2}, {"a": 0.4, "b": 0.4, "c": 0.3}
    plain = report.paired_difference(arm, ref, 1000, 3, 0.95)
    assert plain == report.paired_difference(arm, ref, 1000, 3, 0.95, shift_sd=0.0)
    wider = report.paired_difference(arm, ref, 1000, 3, 0.95, shift_sd=0.1)
    assert wider[0] == plain[0] and wider[1] < plain[1] and wider[2] > plain[2]


def test_budget_plot_has_one_line_per_data_source_with_bands(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    table = []
    for data, budget, value in (
        ("real", "2", 0.2),
        ("real", "4", 0.3),
        ("real+hou", "4", 0.35),
        ("hou", "0", 0.1),
    ):
        table.append(
            {
                "model": "Segmenter",
                "data": data,
                "budget": budget,
                "aji_mean": value,
                "aji_low": value - 0.05,
                "aji_high": value + 0.05,
            }
        )
    saved = {}
    monkeypatch.setattr(plt.Figure, "savefig", lambda fig, path, **_: saved.setdefault("fig", fig))
    assert report.plot_budgets(table, "aji", tmp_path / "budget_aji.png")
    ax = saved["fig"].axes[0]
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["real", "real+hou", "hou (synthetic only)"]
    bands = [
        c
        for c in ax.collections
        if type(c).__name__ in ("PolyCollection", "FillBetweenPolyCollection")
    ]
    low, high = (
        bands[0].get_paths()[0].vertices[:, 1].min(),
        bands[0].get_paths()[0].vertices[:, 1].max(),
    )
    assert (low, high) == pytest.approx((0.15, 0.35))
    assert not report.plot_budgets([table[-1]], "aji", tmp_path / "none.png")


def test_rows_on_synthetic_sets_name_their_generators_curve_verdicts(tmp_path):
    curves = {
        "p2p.json": {"flattened": True, "settled": True},
        "cyc.json": {"flattened": False, "settled": False},
        "old.json": {"flattened": True},  # a curve from before `settled` was measured
        "noisy.json": {"flattened": True, "settled": False},
        # a tail fall of 0.07 above the tolerance, flat only given the measure's noise
        "c2st.json": {"flattened": True, "settled": True, "settled_by_noise": False,
                      "improvement_over_tail": 0.07, "tolerance": 0.02, "noise_sd": 0.032},
        "cut.json": {"flattened": True, "settled": True, "complete": False,
                     "trained_steps": 1700, "max_steps": 2100},
        "cut_epochs.json": {"flattened": True, "settled": True, "complete": False,
                            "trained_steps": 3050, "trained_epochs": 48, "max_epochs": 48},
        # a tail 0.03 worse, beyond the tolerance: flat only given the noise, too
        "worse.json": {"flattened": True, "settled": True, "settled_by_noise": False,
                       "improvement_over_tail": -0.03, "tolerance": 0.02, "noise_sd": 0.027},
    }  # fmt: skip
    for name, curve in curves.items():
        (tmp_path / name).write_text(json.dumps(curve))
    used = ["p2p", "p2p", "cyc", "old", "noisy", "hou", "diff", "c2st", "cut", "cut_epochs",
            "worse"]  # fmt: skip
    sets = {"p2p": "p2p.json", "cyc": "cyc.json", "old": "old.json", "noisy": "noisy.json",
            "hou": None, "c2st": "c2st.json", "cut": "cut.json", "cut_epochs": "cut_epochs.json",
            "worse": "worse.json"}  # fmt: skip
    assert synthetic_set_notes(used, sets, tmp_path) == [
        "- `c2st`: **generator curve flattened and settled within its measure's noise "
        "(sd 0.032)** (c2st.json)",
        "- `cut`: **generator curve incomplete, stopped at step 1700 of 2100** (cut.json)",
        "- `cut_epochs`: **generator curve incomplete, stopped in epoch 48 of 48** "
        "(cut_epochs.json)",
        "- `cyc`: **generator curve not flattened** (cyc.json)",
        "- `diff`: **no learning curve named**",
        "- `hou`: made without training",
        "- `noisy`: **generator curve flattened, not settled** (noisy.json)",
        "- `old`: **generator curve flattened, settling not measured** (old.json)",
        "- `p2p`: generator curve flattened and settled (p2p.json)",
        "- `worse`: **generator curve flattened and settled within its measure's noise "
        "(sd 0.027)** (worse.json)",
    ]
    assert synthetic_set_notes([], sets, tmp_path) == []
    # a chain's two stages (or two exports of a set): one verdict when they agree, else each
    (tmp_path / "stage1.json").write_text(json.dumps({"flattened": True, "settled": True}))
    chains = {"agree": ["stage1.json", "p2p.json"], "split": ["stage1.json", "noisy.json"]}
    assert synthetic_set_notes(["split", "agree"], chains, tmp_path) == [
        "- `agree`: generator curve flattened and settled (stage1.json, p2p.json)",
        "- `split`: generator curve flattened and settled (stage1.json); "
        "**generator curve flattened, not settled** (noisy.json)",
    ]
    with pytest.raises(ValueError, match="missing.json: the learning curve named for set 'p2p'"):
        synthetic_set_notes(["p2p"], {"p2p": "missing.json"}, tmp_path)
    # Through the protocol: the notes end table.md.
    write_run(tmp_path / "runs" / "a", seed=0, train=["x"], rows=rows([0.5, 0.6, 0.7]))
    write_run(tmp_path / "runs" / "b", seed=0, train=["x"], rows=rows([0.6, 0.6, 0.7]),
              synthetic="sets/cyc", ratio=0.5)  # fmt: skip
    # An arm override that renames the data (as the budget protocol's real-5600) names no set.
    write_run(tmp_path / "runs" / "c", seed=0, train=["x"], rows=rows([0.5, 0.5, 0.5]))
    protocol = {"runs": ["runs/*"], "out": "out", "metrics": ["aji"], "synthetic_sets": sets,
                "arms": [{"runs": ["runs/c"], "data": "real-long"}]}  # fmt: skip
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(protocol))
    assert main(["--protocol", str(tmp_path / "protocol.yaml"), "--no-plots"]) == 0
    markdown = (tmp_path / "out" / "table.md").read_text()
    assert markdown.endswith(
        "Synthetic sets of these rows and their generators:\n\n"
        "- `cyc`: **generator curve not flattened** (cyc.json)\n"
    )


def test_rows_whose_seeds_trained_on_different_exports_of_a_set_are_named(tmp_path):
    """Two seeds of real+gan on two exports (fingerprints a1, b2), two of real+hou on one:
    only real+gan is named; runs.csv keeps each run's fingerprint, empty where unrecorded."""
    exports = {"gan_s0": "a1", "gan_s1": "b2", "hou_s0": "c3", "hou_s1": "c3", "real_s0": None}
    for name, export in exports.items():
        data = name.split("_")[0]
        folder = write_run(
            tmp_path / "runs" / name, seed=int(name[-1]), train=["x"],
            rows=rows([0.5, 0.6, 0.7]), synthetic=None if data == "real" else f"sets/{data}",
            ratio=0.0 if data == "real" else 0.5,
        )  # fmt: skip
        if export:
            (folder / "summary_fit.json").write_text(json.dumps({"synthetic_fingerprint": export}))
    assert load_run(tmp_path / "runs" / "gan_s1").synthetic_export == "b2"
    assert load_run(tmp_path / "runs" / "real_s0").synthetic_export is None
    protocol = {"runs": ["runs/*"], "out": "out", "metrics": ["aji"]}
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(protocol))
    assert main(["--protocol", str(tmp_path / "protocol.yaml"), "--no-plots"]) == 0
    markdown = (tmp_path / "out" / "table.md").read_text()
    named = [line for line in markdown.splitlines() if "different exports" in line]
    assert len(named) == 1 and "(a1, b2)" in named[0] and "c3" not in named[0], named
    runs = {Path(r["path"]).name: r for r in csv.DictReader(open(tmp_path / "out" / "runs.csv"))}
    assert {k: r["synthetic_export"] for k, r in runs.items()} == {
        k: v or "" for k, v in exports.items()
    }


def test_precision_is_read_per_run_and_rows_that_mix_it_are_named(tmp_path):
    """A fit's recorded precision wins over the config's; an arm whose seeds trained in
    different precisions is named under the table, one that agrees gets a single line."""
    for seed, precision in [(0, "bf16-mixed"), (1, "32-true")]:
        folder = write_trained_run(tmp_path / "runs" / f"real_s{seed}", seed=seed, steps=800)
        (folder / "summary_fit.json").write_text(json.dumps({"precision": precision}))
    configured = write_trained_run(tmp_path / "runs" / "other_s0", seed=0, steps=800)
    config = yaml.safe_load((configured / "config.yaml").read_text())
    config["trainer"]["precision"] = "bf16-mixed"
    (configured / "config.yaml").write_text(yaml.safe_dump(config))
    assert load_run(configured).training.precision == "bf16-mixed"
    assert load_run(tmp_path / "runs" / "real_s1").training.precision == "32-true"
    protocol = {
        "runs": ["runs/*"],
        "out": "out",
        "metrics": ["aji"],
        "arms": [{"runs": ["runs/other_*"], "data": "other"}],
    }
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(protocol))
    assert main(["--protocol", str(tmp_path / "protocol.yaml"), "--no-plots"]) == 0
    table = {r["data"]: r for r in csv.DictReader(open(tmp_path / "out" / "table.csv"))}
    assert table["real"]["precision"] == "32-true/bf16-mixed"
    assert table["other"]["precision"] == "bf16-mixed"
    markdown = (tmp_path / "out" / "table.md").read_text()
    assert "differs between the seeds of: real 2 (32-true/bf16-mixed)" in markdown
    runs = list(csv.DictReader(open(tmp_path / "out" / "runs.csv")))
    assert sorted(r["precision"] for r in runs) == ["32-true", "bf16-mixed", "bf16-mixed"]
    (tmp_path / "runs" / "real_s1" / "summary_fit.json").write_text(
        json.dumps({"precision": "bf16-mixed"})
    )
    assert main(["--protocol", str(tmp_path / "protocol.yaml"), "--no-plots"]) == 0
    markdown = (tmp_path / "out" / "table.md").read_text()
    assert "Training precision: bf16-mixed (as each run recorded it)." in markdown
