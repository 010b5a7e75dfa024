"""The supervised baseline end to end through the CLI: fit, test, predict, evaluate."""

from __future__ import annotations

import csv
import json

import pytest

from histo_gan.cli import main
from histo_gan.data.readers import read_label_map
from histo_gan.data.sources import BundledSample, bundled_sample_dir

CONFIG = "conf/experiment/baseline_unet_tiny.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, repo_root):
    out = tmp_path_factory.mktemp("baseline")
    common = [
        "--config",
        str(repo_root / CONFIG),
        "--trainer.logger=[{class_path: lightning.pytorch.loggers.CSVLogger, init_args: {save_dir: runs}}]",
        f"--trainer.default_root_dir={out}",
        "--name=run",
        "--trainer.callbacks=[{class_path: histo_gan.callbacks.RunCheckpoint}]",
    ]
    main(["fit", *common, "--trainer.max_epochs=2", "--data.patches_per_epoch=24"])
    return out, common


def test_fit_logs_the_shared_metrics_and_saves_the_split(trained):
    out, _ = trained
    rows = list(csv.DictReader(open(out / "run" / "version_0" / "metrics.csv")))
    columns = set(rows[0])
    for name in (
        "val/dice",
        "val/aji",
        "val/pq",
        "val/hausdorff",
        "val/aggregate/aji",
        "train/loss",
    ):
        assert name in columns, name
    values = [float(r["val/aji"]) for r in rows if r.get("val/aji")]
    assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values)
    split = json.loads((out / "run" / "version_0" / "split.json").read_text())
    assert len(split["train"]) == 4 and len(split["val"]) == 1 and len(split["test"]) == 1
    summary = json.loads((out / "run" / "version_0" / "summary_fit.json").read_text())
    assert summary["epochs"] == 2 and "val/aji" in summary


def test_test_and_predict_and_evaluate_agree(trained, capsys):
    out, common = trained
    checkpoint = str(out / "run" / "version_0" / "checkpoints" / "last.ckpt")
    main(["test", *common, "--ckpt_path", checkpoint])
    test_dir = out / "run" / "version_1"
    summary = json.loads((test_dir / "test_metrics.json").read_text())
    assert summary["num_images"] == 1 and set(summary["aggregate"]) >= {"aji", "pq", "dice"}
    assert "test metrics per image" in capsys.readouterr().out

    predictions = out / "predictions"
    writer = f"--trainer.callbacks+={{class_path: histo_gan.callbacks.InstanceMapWriter, init_args: {{output_dir: {predictions}}}}}"
    main(["predict", *common, writer, "--ckpt_path", checkpoint])
    (test_id,) = json.loads((out / "run" / "version_0" / "split.json").read_text())["test"]
    predicted = read_label_map(predictions / f"{test_id}.png")
    truth = BundledSample().load(BundledSample().image_ids.index(test_id)).label
    assert predicted.shape == truth.shape and predicted.max() > 0

    assert (
        main(
            [
                "evaluate",
                "--pred",
                str(predictions),
                "--gt",
                str(bundled_sample_dir() / "labels"),
                "--out",
                str(out / "eval"),
            ]
        )
        == 2
    )  # the other five crops have no prediction
    only = out / "gt_test"
    only.mkdir()
    (only / f"{test_id}.png").write_bytes(
        (bundled_sample_dir() / "labels" / f"{test_id}.png").read_bytes()
    )
    assert (
        main(
            ["evaluate", "--pred", str(predictions), "--gt", str(only), "--out", str(out / "eval")]
        )
        == 0
    )
    evaluated = json.loads((out / "eval" / "metrics.json").read_text())
    for name in ("aji", "pq", "dice", "hausdorff"):
        assert evaluated["per_image"][name] == pytest.approx(
            summary["per_image"][name], abs=1e-5
        ), name
