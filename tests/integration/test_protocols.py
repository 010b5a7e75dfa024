"""Every protocol config (as its sweep stacks it) and every data mix runs with fast_dev_run.

The configs read ../shared/data and the committed splits by paths relative to the repository
root. Tiny overrides keep each case to a step: validation on the bundled sample, no loggers,
the synthetic datasets replaced by a tiny `hou` set made from the bundled sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from histo_gan.cli import main
from histo_gan.data.sources import bundled_sample_dir

pytestmark = pytest.mark.real_data

REPO = Path(__file__).resolve().parents[2]
SWEEPS = sorted(
    p
    for p in (REPO / "experiments" / "sweeps").glob("*.yaml")
    if "fit_test.sh" in p.read_text()  # the protocol sweeps (fit + test trials)
)
MIXES = sorted((REPO / "experiments" / "protocols" / "mix").glob("*.yaml"))
CYCLEGAN = ["cyclegan_cpu.yaml", "cyclegan_gpu.yaml"]
TINY = [
    "--trainer.accelerator=cpu",
    "--trainer.fast_dev_run=1",
    "--trainer.logger=false",
    "--data.num_workers=0",
    "--data.val_source=histo_gan.data.BundledSample",
    "--data.batch_size=2",  # one step checks the stack; the paper-size ones train 16 x 256 px
]


def sweep_stack(sweep: Path) -> list[str]:
    """The fixed arguments of a sweep's command plus the first value of each parameter."""
    spec = yaml.safe_load(sweep.read_text())
    start = spec["command"].index("experiments/protocols/fit_test.sh") + 1
    fixed = [a for a in spec["command"][start:] if a not in ("${args}", "${env}")]
    first = {
        name: (p["values"][0] if "values" in p else p["value"])
        for name, p in spec["parameters"].items()
    }
    return fixed + [f"--{name}={value}" for name, value in first.items()]


def joined(arguments: list[str]) -> list[str]:
    """``["--config", "a.yaml", "--x=1"]`` -> ``["--config=a.yaml", "--x=1"]``."""
    out: list[str] = []
    for argument in arguments:
        if out and "=" not in out[-1] and not argument.startswith("--"):
            out[-1] = f"{out[-1]}={argument}"
        else:
            out.append(argument)
    return out


@pytest.fixture(scope="module")
def tiny_synthetic(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "hou"
    code = main(
        ["synthesize", "--source", str(bundled_sample_dir() / "images"), "--out", str(out)]
        + ["--method", "hou", "--n", "4", "--size", "256", "--seed", "0", "--grid", "0"]
    )
    assert code == 0
    return out


def _reading_tiny_hou(root: Path) -> list[str]:
    """Overrides that point a Hou refiner's training and predict sets at ``root``."""
    return [f"--data.{key}.init_args.root={root}" for key in ("synthetic", "predict_source")]


@pytest.fixture
def at_repo(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    return ["--trainer.default_root_dir", str(tmp_path)]


def _fit(args: list[str], tmp_path: Path) -> dict:
    summary = tmp_path / "summary.json"
    os.environ["HISTO_GAN_SUMMARY"] = str(summary)
    try:
        assert main(["fit", *args]) == 0
    finally:
        del os.environ["HISTO_GAN_SUMMARY"]
    return json.loads(summary.read_text())


@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda p: p.stem)
def test_every_protocol_sweep_runs_one_step(sweep, at_repo, tiny_synthetic, tmp_path):
    args = [a for a in joined(sweep_stack(sweep)) if a != "--config=conf/logger/sweep.yaml"]
    synthetic = ("mix/" in a and not a.endswith("mix/real.yaml") for a in args)
    if any(synthetic):
        args.append(f"--data.synthetic.init_args.root={tiny_synthetic}")
    summary = _fit([*args, *at_repo, *TINY], tmp_path)
    assert summary["epochs"] == 1
    assert "val/aji" in summary and 0.0 <= summary["val/aji"] <= 1.0


@pytest.mark.parametrize("mix", MIXES, ids=lambda p: p.stem)
def test_every_data_mix_trains_on_the_mix(mix, at_repo, tiny_synthetic, tmp_path):
    config = yaml.safe_load(mix.read_text())["data"]
    args = ["--config=experiments/protocols/label_budget/cpu.yaml", f"--config={mix}"]
    if config["synthetic"] is not None:
        args.append(f"--data.synthetic.init_args.root={tiny_synthetic}")
    summary = _fit([*args, *at_repo, *TINY], tmp_path)
    assert 0 < summary["train/loss"] < 10
    assert 0.0 <= summary["val/aji"] <= 1.0


@pytest.mark.parametrize("config", CYCLEGAN)
def test_cyclegan_configs_run_one_step(config, at_repo, tmp_path):
    stack = {
        "cyclegan_cpu.yaml": [],
        "cyclegan_gpu.yaml": ["conf/trainer/gpu.yaml", "conf/model/cyclegan_mahmood.yaml"],
    }[config]
    args = [f"--config={c}" for c in [*stack, f"experiments/protocols/mahmood2019/{config}"]]
    overrides = ["--data.patch_size=64", "--data.batch_size=1", "--data.patches_per_epoch=1"]
    summary = _fit([*args, *at_repo, *TINY, *overrides], tmp_path)
    assert summary["epochs"] == 1 and summary["train/loss_cycle"] > 0


def _class_names(callbacks: list) -> list[str]:
    """``[{"class_path": "a.b.C", ...}, ...]`` -> ``["C", ...]`` (entries without one skipped)."""
    return [c["class_path"].rsplit(".", 1)[1] for c in callbacks if isinstance(c, dict)]


def test_cyclegan_curve_layers_set_the_papers_schedule(capsys, at_repo):
    """The 200-epoch curve layer keeps the curve layer's callbacks, lengthens the run, enlarges
    the realism monitor and averages the weights after the monitor has measured them."""
    layers = ["cyclegan_cpu.yaml", "cyclegan_curve_cpu.yaml", "cyclegan_curve200_cpu.yaml"]
    args = [f"--config=experiments/protocols/mahmood2019/{c}" for c in layers]
    with pytest.raises(SystemExit):
        main(["fit", *args, "--print_config"])
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["trainer"]["max_epochs"] == 200
    listed = config["trainer"]["callbacks"]
    callbacks = dict(zip(_class_names(listed), (c.get("init_args", {}) for c in listed)))
    assert callbacks["RealismMonitor"]["num_patches"] == 512
    assert callbacks["ModelCheckpoint"]["every_n_epochs"] == 2
    assert callbacks["SyntheticExport"]["root"] == "runs/protocols/candidates/cyclegan"
    order = _class_names(listed)
    assert order.index("EMAWeightAveraging") > order.index("RealismMonitor")


def _callback_names(path: Path) -> list[str]:
    """The class names of the callbacks a config file lists, in order."""
    spec = yaml.safe_load(path.read_text()) or {}
    return _class_names((spec.get("trainer") or {}).get("callbacks") or [])


AVERAGED = sorted(
    p
    for folder in ("experiments/protocols", "conf")
    for p in (REPO / folder).rglob("*.yaml")
    if "EMAWeightAveraging" in _callback_names(p)
)


def test_the_weight_averaging_layers_exist():
    names = {p.name for p in AVERAGED}
    assert {"cyclegan_curve200_cpu.yaml", "daff_curve_long_cpu.yaml", "curve_ema_cpu.yaml"} <= names


@pytest.mark.parametrize("layer", AVERAGED, ids=lambda p: p.stem)
def test_weight_averaging_comes_after_the_realism_monitor(layer):
    """EMAWeightAveraging swaps the raw weights back when validation ends: a monitor listed
    after it would measure the raw weights, not the average that is exported."""
    order = _callback_names(layer)
    assert "RealismMonitor" in order
    assert order.index("EMAWeightAveraging") > order.index("RealismMonitor")


@pytest.mark.parametrize(
    "stack",
    [
        [
            "conf/experiment/pix2pixhd_stage2_tiny.yaml",
            "experiments/protocols/daff_monuseg.yaml",
            "experiments/protocols/daff_cpu.yaml",
            "conf/generator/daffgan_tiny.yaml",
            "experiments/protocols/daff_curve_cpu.yaml",
            "experiments/protocols/daff_curve_long_cpu.yaml",
        ],
        [
            "experiments/protocols/hou_refiners/data_cpu.yaml",
            "experiments/protocols/hou_refiners/hou2017_cpu.yaml",
            "experiments/protocols/hou_refiners/curve_cpu.yaml",
            "experiments/protocols/hou_refiners/curve_ema_cpu.yaml",
        ],
    ],
    ids=["daffgan_stage2_long", "hou2017_curve_ema"],
)
def test_averaged_curve_stacks_run_one_step(stack, at_repo, tiny_synthetic, tmp_path):
    """Each averaged stack trains one step; the Hou refiners read a tiny `hou` set, since the
    protocol's own (runs/protocols/synthetic/hou) exists only once make_synthetic.sh has run."""
    args = [f"--config={c}" for c in stack]
    overrides = ["--data.patch_size=64", "--data.batch_size=2", "--data.patches_per_epoch=2"]
    if any("hou_refiners/" in c for c in stack):
        overrides += _reading_tiny_hou(tiny_synthetic)
    summary = _fit([*args, *at_repo, *TINY, *overrides], tmp_path)
    assert summary["epochs"] == 1


def test_split_images_links_only_training_images(tmp_path):
    split = json.loads((REPO / "experiments/splits/budget_4.json").read_text())
    images = tmp_path / "images"
    images.mkdir()
    for image_id in split["train"] + split["val"] + split["test"]:
        (images / f"{image_id}.tif").write_bytes(b"")
    out = tmp_path / "links"
    script = REPO / "experiments" / "protocols" / "split_images.py"
    subprocess.run([sys.executable, script, REPO / "experiments/splits/budget_4.json", images, out])
    assert sorted(p.stem for p in out.iterdir()) == sorted(split["train"])
    assert all(p.is_symlink() for p in out.iterdir())


@pytest.mark.parametrize("method", ["hou2017", "hou2019", "hou2019_no_importance"])
def test_hou_refiner_configs_run_one_step(method, at_repo, tiny_synthetic, tmp_path):
    """Stacked as make_synthetic.sh stacks them: data, hou2017, then hou2019, then the ablation."""
    folder = "experiments/protocols/hou_refiners"
    order = ["data", "hou2017", "hou2019", "hou2019_no_importance"]
    stack = [f"{name}_cpu.yaml" for name in order[: order.index(method) + 1]]
    args = [f"--config={folder}/{c}" for c in stack]
    summary = _fit([*args, *at_repo, *TINY, *_reading_tiny_hou(tiny_synthetic)], tmp_path)
    assert summary["epochs"] == 1 and summary["train/generator_pretrain/loss"] >= 0
    assert 0.0 <= summary["val/aji"] <= 1.0
