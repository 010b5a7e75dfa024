"""Config files that overlay others (``overlays:``) and the command lines they stand for."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from histo_gan.config_files import overlays_of, with_overlays
from histo_gan.config_origin import origin_of
from histo_gan.readers import DataError

# --- the expansion of a command line -----------------------------------------------------


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_a_plain_config_stays_as_given(tmp_path):
    plain = write(tmp_path / "plain.yaml", "data: {batch_size: 2}\n")
    string = "{" + ", ".join(f'"k{i}": {i}' for i in range(400)) + "}"  # a config string
    arguments = ["fit", "--config", plain, "--data.batch_size=3", f"--config={plain}", "-c", string]
    assert with_overlays(arguments) == arguments


def test_an_overlay_stands_for_its_bases_then_its_own_settings(tmp_path):
    paper = write(tmp_path / "model" / "paper.yaml", "model: {class_path: a.B}\n")
    small = write(tmp_path / "model" / "small.yaml", "overlays: paper.yaml\nname: small\n")
    run = write(
        tmp_path / "experiment" / "run.yaml",
        "# a run\noverlays:\n  - ../model/small.yaml\nseed_everything: 1\n",
    )
    expanded = with_overlays(["fit", "--config", run, "--name", "x"])
    assert expanded[:3] == ["fit", "--config", paper]
    assert [yaml.safe_load(a) for a in expanded[4:7:2]] == [
        {"name": "small"},
        {"seed_everything": 1},
    ]
    assert expanded[7:] == ["--name", "x"]
    assert with_overlays([f"--config={run}"], inline=False) == [
        f"--config={f}" for f in (paper, small, run)
    ]
    assert overlays_of(run) == [small] and overlays_of(paper) == []


def test_a_missing_or_circular_overlay_names_the_file(tmp_path):
    lost = write(tmp_path / "lost.yaml", "overlays: nowhere.yaml\n")
    with pytest.raises(DataError, match=r"lost\.yaml: overlays nowhere\.yaml: no such config"):
        with_overlays(["--config", lost])
    write(tmp_path / "a.yaml", "overlays: b.yaml\n")
    circle = write(tmp_path / "b.yaml", "overlays: a.yaml\n")
    with pytest.raises(DataError, match="overlays itself"):
        with_overlays(["--config", circle])


def test_a_setting_is_traced_to_the_file_that_gives_it(tmp_path):
    paper = write(tmp_path / "paper.yaml", "data: {batch_size: 8, reference: same_image}\n")
    tiny = write(tmp_path / "tiny.yaml", "overlays: paper.yaml\ndata: {batch_size: 4}\n")
    assert origin_of(["--config", tiny], "data.batch_size") == f"set in {tiny}"
    assert origin_of(["--config", tiny], "data.reference") == f"set in {paper}"
    assert origin_of(["--config", tiny, "--data.reference=none"], "data.reference") == (
        "set on the command line"
    )
