"""Two "nodes" of one process each on loopback, started the way a cluster starts them.

Each node is ``python -m histo_gan.cli ...`` with its own ``NODE_RANK`` and the same
``MASTER_ADDR``/``MASTER_PORT`` (what ``srun`` or a by-hand multi-node start does; torchrun sets
``RANK`` instead and goes through the same code). The job must train each patch key on one
process only, together the keys of one process; score each test image once, to the metrics of
one process; write one run folder and one set of checkpoints; and export each synthetic
sample once.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from histo_gan.cli import main
from histo_gan.data.synthetic import SyntheticDataset
from histo_gan.distributed import RANK_VARIABLES
from tests.integration.patch_probe import probe_argument, read_digests

REPO = Path(__file__).resolve().parents[2]
BASELINE = str(REPO / "conf" / "experiment" / "baseline_unet_tiny.yaml")
CYCLEGAN = str(REPO / "conf" / "experiment" / "mahmood_cyclegan_tiny.yaml")
# As conf/trainer/ddp_multinode.yaml: a GAN update freezes the other networks before its forward,
# so their parameters take no part in that backward and DDP must be told to expect it.
TWO_NODES = [
    "--trainer.num_nodes=2",
    "--trainer.devices=1",
    "--trainer.accelerator=cpu",
    "--trainer.strategy=ddp_find_unused_parameters_true",
]
# 1 val, 3 test and 2 training crops of the bundled sample: rank 1 gets a padding test item.
SPLIT = [
    "--data.split",
    "histo_gan.data.RandomSplit",
    "--data.split.val_fraction",
    "0.2",
    "--data.split.test_fraction",
    "0.5",
]
NODE_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launcher_variable(name: str) -> bool:
    """Set by a launcher this test may itself run under (SLURM, torchrun): not for the nodes."""
    return (
        name in RANK_VARIABLES
        or name.startswith(("SLURM_", "TORCHELASTIC_"))
        or name
        in ("WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    )


def on_two_nodes(cwd: Path, *args: str) -> str:
    """Run ``histo-gan ARGS`` as node 0 and node 1 of one job; returns node 0's output."""
    env = {k: v for k, v in os.environ.items() if not launcher_variable(k)}
    env.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(free_port()),
        GLOO_SOCKET_IFNAME="lo",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(REPO),
    )
    command = [sys.executable, "-m", "histo_gan.cli", *args, *TWO_NODES]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    nodes = [
        subprocess.Popen(command, cwd=cwd, env={**env, "NODE_RANK": str(rank)}, **pipes)
        for rank in (0, 1)
    ]
    outputs = []
    try:
        for node in nodes:
            outputs.append(node.communicate(timeout=NODE_TIMEOUT_S)[0])
    finally:
        for node in nodes:
            node.kill()
    for rank, (node, output) in enumerate(zip(nodes, outputs)):
        assert node.returncode == 0, f"node {rank}: {output[-3000:]}"
    return outputs[0]


def metrics_of(run: Path) -> dict:
    return json.loads((run / "test_metrics.json").read_text())


def assert_same_metrics(one: dict, two: dict) -> None:
    assert one["num_images"] == two["num_images"] == 3
    for kind in ("per_image", "aggregate"):
        assert one[kind].keys() == two[kind].keys()
        for name, value in one[kind].items():
            assert two[kind][name] == pytest.approx(value, abs=1e-6), (kind, name)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_baseline_on_two_nodes(tmp_path, monkeypatch):
    jobs, single = tmp_path / "jobs", tmp_path / "single"
    jobs.mkdir(), single.mkdir()
    fit = [
        "fit",
        "--config",
        BASELINE,
        *SPLIT,
        "--trainer.max_epochs=1",
        "--data.patches_per_epoch=12",
        "--data.batch_size=6",
    ]
    on_two_nodes(jobs, *fit, probe_argument(tmp_path / "keys_two"))
    on_two_nodes(jobs, "test", "--config", BASELINE, *SPLIT, "--ckpt_path", "best")

    runs = jobs / "runs" / "baseline_unet_tiny"
    assert sorted(os.listdir(jobs)) == ["runs"] and sorted(os.listdir(runs)) == [
        "version_0",
        "version_1",
    ]
    fit_files, test_files = files_under(runs / "version_0"), files_under(runs / "version_1")
    assert [f for f in fit_files if f.startswith("checkpoints")] == [
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
    ]
    assert {"config.yaml", "split.json", "summary_fit.json", "metrics.csv"} <= set(fit_files)
    assert {"config.yaml", "summary_test.json", "test_metrics.json"} <= set(test_files)
    assert not any(f.endswith((".ckpt", ".partial")) for f in test_files)

    # Each process trained on its own half of the epoch's patches; together on one process's.
    monkeypatch.chdir(single)
    assert main([*fit, probe_argument(tmp_path / "keys_one")]) == 0
    two, one = read_digests(tmp_path / "keys_two"), read_digests(tmp_path / "keys_one")
    assert sorted(two) == ["rank0", "rank1"] and len(two["rank0"]) == len(two["rank1"]) == 6
    assert not set(two["rank0"]) & set(two["rank1"])
    assert sorted(two["rank0"] + two["rank1"]) == sorted(one["rank0"])

    # Every test image scored once: the figures of one process on the same checkpoint.
    checkpoint = runs / "version_0" / "checkpoints" / "best.ckpt"
    assert main(["test", "--config", BASELINE, *SPLIT, "--ckpt_path", str(checkpoint)]) == 0
    single_test = single / "runs" / "baseline_unet_tiny" / "version_1"
    assert_same_metrics(metrics_of(single_test), metrics_of(runs / "version_1"))


@pytest.mark.slow
def test_cyclegan_on_two_nodes_tests_and_exports_like_one_process(tmp_path, monkeypatch):
    jobs, single = tmp_path / "jobs", tmp_path / "single"
    jobs.mkdir(), single.mkdir()
    tiny = [*SPLIT, "--data.predict_source.init_args.n=5"]  # 5 masks: rank 1 pads its shard
    on_two_nodes(
        jobs,
        "fit",
        "--config",
        CYCLEGAN,
        *tiny,
        "--trainer.max_epochs=1",
        "--data.patches_per_epoch=8",
        "--data.batch_size=4",
    )
    on_two_nodes(jobs, "test", "--config", CYCLEGAN, *tiny, "--ckpt_path", "last")
    on_two_nodes(jobs, "predict", "--config", CYCLEGAN, *tiny, "--ckpt_path", "last")

    runs = jobs / "runs" / "mahmood_cyclegan_tiny"
    assert sorted(os.listdir(runs)) == ["pairs", "version_0", "version_1", "version_2"]
    checkpoints = [f for f in files_under(jobs / "runs") if f.endswith(".ckpt")]
    assert checkpoints == ["mahmood_cyclegan_tiny/version_0/checkpoints/last.ckpt"]

    monkeypatch.chdir(single)
    checkpoint = str(runs / "version_0" / "checkpoints" / "last.ckpt")
    assert main(["test", "--config", CYCLEGAN, *tiny, "--ckpt_path", checkpoint]) == 0
    assert main(["predict", "--config", CYCLEGAN, *tiny, "--ckpt_path", checkpoint]) == 0
    single_runs = single / "runs" / "mahmood_cyclegan_tiny"
    assert_same_metrics(metrics_of(single_runs / "version_0"), metrics_of(runs / "version_1"))

    # Each of the 5 masks exported once (rank 0 writes what both ranks synthesised), the
    # same samples as one process's export.
    two, one = SyntheticDataset(runs / "pairs"), SyntheticDataset(single_runs / "pairs")
    assert len(two) == len(one) == 5
    two_items = {two[k].image_id: two[k] for k in range(5)}
    for k in range(5):
        expected = one[k]
        got = two_items[expected.image_id]
        assert np.array_equal(got.label, expected.label)
        assert np.abs(got.image.astype(int) - expected.image.astype(int)).max() <= 1
