"""Config files that overlay others, and the tiny configs as overlays of their paper configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from histo_gan.config_files import overlaid_files, overlays_of, with_overlays
from histo_gan.config_origin import origin_of
from histo_gan.readers import DataError

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
TINY = sorted(
    p.relative_to(REPO).as_posix()
    for folder in ("experiment", "model", "generator")
    for p in (CONF / folder).glob("*_tiny.yaml")
)

# What a tiny config may change in the config it overlays. Sizes: the last part of a key
# (``init_args`` levels left out) ...
SIZE_KEYS = set(
    """
    base_channels texture_channels texture_convs blocks n_blocks n_layers n_downsampling
    convs_per_stage encoder_name encoder_depth decoder_channels block_out_channels
    layers_per_block down_block_types up_block_types norm_num_groups sample_size patch_size
    size_multiple pool_size history_size pretrain_generator_steps pretrain_discriminator_steps
    adversarial_rounds pretrain_segmenter_steps joint_rounds generator_steps discriminator_steps
    segmenter_steps final_segmenter_steps sampling_steps heldout_sampling_steps warmup_steps
    histogram_every_n_steps
    """.split()
)
# ... whole components that are sizes (the inference tiles) ...
SIZE_COMPONENTS = ("model.sliding_window",)
# ... and the run: its name, seed, trainer (budget, hardware, callbacks) and bundled-sample data.
RUN_KEYS = (
    "name",
    "seed_everything",
    "trainer",
    "data.patch_size",
    "data.patches_per_epoch",
    "data.batch_size",
    "data.synthetic",
    "data.synthetic_ratio",
    "data.predict_source",
)
# Settings that are not sizes, each kept from the full tiny config this overlay replaced (the
# recorded first-step losses and the CPU results were made with them); the overlay's comment
# says so. A new one belongs here only with a reason.
OPTIMIZERS = ("model.generator_optimizer", "model.discriminator_optimizer")
DEPARTURES = {
    "conf/model/baseline_unet_tiny.yaml": (
        "model.boundary_width",
        "model.optimizer.lr",
        "model.optimizer.weight_decay",
        "model.lr_scheduler",
    ),
    "conf/experiment/hou2017_refiner_tiny.yaml": (
        "model.segmentation_head.boundary_width",
        *OPTIMIZERS,
        "model.segmenter_optimizer",
        "model.gradient_clip_norm",
    ),
    "conf/experiment/mahmood_cgan_tiny.yaml": (*OPTIMIZERS, "model.lr_schedule"),
    "conf/model/cgan_segmenter_tiny.yaml": (*OPTIMIZERS, "model.lr_schedule"),
    "conf/experiment/mahmood_cyclegan_tiny.yaml": (*OPTIMIZERS, "model.lr_schedule"),
    "conf/model/cyclegan_tiny.yaml": (*OPTIMIZERS, "model.lr_schedule"),
    "conf/experiment/pix2pixhd_stage1_tiny.yaml": (
        "model.pairing.boundary_width",
        "model.adversarial_loss",
        "model.feature_matching",
        "model.lr_schedule",
        "model.coarse_to_fine.fixed_global_share",
        *(f"{o}.lr" for o in OPTIMIZERS),
    ),
    "conf/experiment/diffusion_tiny.yaml": (
        "model.condition.boundary_width",
        "model.sampler",
        "model.ema_decay",
        "model.optimizer.lr",
    ),
    "conf/experiment/template_tiny.yaml": tuple(f"{o}.lr" for o in OPTIMIZERS),
}
DEPARTURES["conf/experiment/hou2019_refiner_tiny.yaml"] = DEPARTURES[
    "conf/experiment/hou2017_refiner_tiny.yaml"
]
DEPARTURES["conf/experiment/pix2pixhd_stage2_tiny.yaml"] = (
    *DEPARTURES["conf/experiment/pix2pixhd_stage1_tiny.yaml"],
    "model.perceptual",
)


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        doubled = {k for k in keys if keys.count(k) > 1}
        if doubled:
            raise yaml.YAMLError(f"line {node.start_mark.line + 1}: {sorted(doubled)} given twice")
        return super().construct_mapping(node, deep=deep)


def load(path: str | Path) -> dict:
    return yaml.load(Path(path).read_text(), Loader=UniqueKeyLoader) or {}


def merged(base: object, overlay: object) -> object:
    """``overlay`` over ``base`` as LightningCLI merges two configs: mappings key by key, but
    another ``class_path`` replaces the component; anything else is replaced."""
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        return overlay
    if "class_path" in overlay and overlay["class_path"] != base.get("class_path"):
        return overlay
    return {**base, **{k: merged(base.get(k), v) for k, v in overlay.items()}}


def leaves(config: object, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
    """Every setting of a config, keyed by its path (``init_args`` kept)."""
    if not isinstance(config, dict) or not config:
        return {path: config}
    return {k: v for key, value in config.items() for k, v in leaves(value, (*path, key)).items()}


def at(config: object, path: tuple[str, ...]) -> object:
    for part in path:
        if not isinstance(config, dict) or part not in config:
            return KeyError
        config = config[part]
    return config


def dotted(path: tuple[str, ...]) -> str:
    return ".".join(part for part in path if part != "init_args")


def allowed(name: str, key: str) -> bool:
    if key.rsplit(".", 1)[-1] in SIZE_KEYS:
        return True
    prefixes = (*SIZE_COMPONENTS, *RUN_KEYS, *DEPARTURES.get(name, ()))
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def test_every_config_has_each_key_once():
    for path in sorted(CONF.rglob("*.yaml")):
        load(path)  # raises on a doubled key


@pytest.mark.parametrize("name", TINY)
def test_a_tiny_config_overlays_its_paper_config(name):
    files = overlaid_files(REPO / name)
    assert len(files) > 1, f"{name}: a tiny config names the config it makes small (overlays:)"
    assert not Path(files[0]).stem.endswith("_tiny"), files  # the chain starts at paper size


@pytest.mark.parametrize("name", TINY)
def test_a_tiny_config_changes_only_sizes_and_its_run(name):
    base: object = {}
    for file in overlaid_files(REPO / name)[:-1]:
        base = merged(base, load(file))
    overlay = {k: v for k, v in load(REPO / name).items() if k != "overlays"}
    changed, same = [], []
    for path, value in leaves(overlay).items():
        if path[-1] == "class_path" and at(base, path) != value:
            path = path[:-1]  # another component: all of it is the change
        (same if at(base, path) == value else changed).append(dotted(path))
    assert not same, f"{name} repeats what it overlays: {same}"
    forbidden = sorted({key for key in changed if not allowed(name, key)})
    assert not forbidden, f"{name} changes settings that are not sizes: {forbidden}"


def test_every_declared_departure_is_used():
    """The list above names only what the overlays change, so it shrinks with them."""
    for name, keys in DEPARTURES.items():
        overlay = {dotted(path) for path in leaves(load(REPO / name))}
        unused = [k for k in keys if not any(o == k or o.startswith(k + ".") for o in overlay)]
        assert not unused, f"{name}: {unused}"


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


def test_a_tiny_setting_is_traced_to_its_paper_config(monkeypatch):
    monkeypatch.chdir(REPO)
    tiny = ["--config", "conf/experiment/hou2019_refiner_tiny.yaml"]
    assert origin_of(tiny, "data.batch_size") == "set in conf/experiment/hou2019_refiner_tiny.yaml"
    assert origin_of(tiny, "data.reference") == "set in conf/model/hou2019_refiner.yaml"
    assert origin_of([*tiny, "--data.reference", "none"], "data.reference") == (
        "set on the command line"
    )


def test_a_setting_is_traced_to_the_file_that_gives_it(tmp_path):
    paper = write(tmp_path / "paper.yaml", "data: {batch_size: 8, reference: same_image}\n")
    tiny = write(tmp_path / "tiny.yaml", "overlays: paper.yaml\ndata: {batch_size: 4}\n")
    assert origin_of(["--config", tiny], "data.batch_size") == f"set in {tiny}"
    assert origin_of(["--config", tiny], "data.reference") == f"set in {paper}"
    assert origin_of(["--config", tiny, "--data.reference=none"], "data.reference") == (
        "set on the command line"
    )
