"""The losses of the first training batches of every tiny config, against a recorded fixture.

The fixtures were recorded with seed 0, fp32 and deterministic algorithms on one CPU thread;
a refactor that keeps the behaviour keeps every value. fp32 kernels sum in a different order
on each CPU instruction set (``torch.backends.cpu.get_cpu_capability()``), so each
instruction set has its own fixture: ``tests/fixtures/first_step_losses.json`` (AVX512) and
``first_step_losses.avx2.json`` (AVX2). The two differ by at most 1.8e-4 of a loss at the
first batch and by up to 4% at the fifth (the adversarial games amplify the difference), and
the scalar kernels (``ATEN_CPU_CAPABILITY=default``) by up to 2% at the first batch of the
CycleGAN, so no tolerance makes one fixture serve every CPU. On a CPU of another kind the
test checks what does not depend on rounding (every batch logs its losses, every optimizer's
parameters get gradients) and skips the values, saying so. Re-record both
after an intended change (and say why in the commit), each on a machine of its kind::

    HISTO_GAN_RECORD_LOSSES=1 python -m pytest tests/integration/test_first_step_losses.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from tests.integration.first_steps import first_steps

REPO = Path(__file__).resolve().parents[2]
FIXTURES = {
    "AVX512": REPO / "tests" / "fixtures" / "first_step_losses.json",
    "AVX2": REPO / "tests" / "fixtures" / "first_step_losses.avx2.json",
}
CAPABILITY = torch.backends.cpu.get_cpu_capability()
FIXTURE = FIXTURES.get(CAPABILITY, FIXTURES["AVX512"])
RECORD = os.environ.get("HISTO_GAN_RECORD_LOSSES") == "1"

# Algorithm 1 compressed so that 7 batches pass through every phase of the refiners:
# G pre-training, G adversarial, D, R pre-training, G with hard examples, D (with history), R.
ALL_PHASES = [
    f"--model.init_args.phases.init_args.{key}={value}"
    for key, value in {
        "pretrain_generator_steps": 1,
        "pretrain_discriminator_steps": 0,
        "adversarial_rounds": 1,
        "generator_steps": 1,
        "discriminator_steps": 1,
        "pretrain_segmenter_steps": 1,
        "joint_rounds": 10,
        "segmenter_steps": 1,
        "final_segmenter_steps": 0,
    }.items()
]
# pix2pixHD's coarse-to-fine stages within 5 of its 32 batches: global 2, enhancer 1, joint.
ALL_STAGES = [
    "--model.init_args.coarse_to_fine.init_args.global_share=0.0625",
    "--model.init_args.coarse_to_fine.init_args.fixed_global_share=0.03125",
]
SAMPLE = ["conf/trainer/cpu_tiny.yaml", "conf/data/sample.yaml"]
DAFF = "conf/generator/daffgan_tiny.yaml"

# name -> (configs, extra arguments, batches)
CASES = {
    "baseline_unet_tiny": (["conf/experiment/baseline_unet_tiny.yaml"], [], 5),
    "hou2017_refiner_tiny": (["conf/experiment/hou2017_refiner_tiny.yaml"], [], 5),
    "hou2017_refiner_tiny/all_phases": (
        ["conf/experiment/hou2017_refiner_tiny.yaml"],
        ALL_PHASES,
        7,
    ),
    "hou2019_refiner_tiny": (["conf/experiment/hou2019_refiner_tiny.yaml"], [], 5),
    "hou2019_refiner_tiny/all_phases": (
        ["conf/experiment/hou2019_refiner_tiny.yaml"],
        ALL_PHASES,
        7,
    ),
    "hou2019_refiner_tiny/no_importance": (
        ["conf/experiment/hou2019_refiner_tiny.yaml"],
        [*ALL_PHASES, "--model.init_args.weighting=null"],
        7,
    ),
    "mahmood_cgan_tiny": (["conf/experiment/mahmood_cgan_tiny.yaml"], [], 5),
    "mahmood_cyclegan_tiny": (["conf/experiment/mahmood_cyclegan_tiny.yaml"], [], 5),
    "pix2pixhd_stage1_tiny": (["conf/experiment/pix2pixhd_stage1_tiny.yaml"], [], 5),
    "pix2pixhd_stage2_tiny": (["conf/experiment/pix2pixhd_stage2_tiny.yaml"], [], 5),
    "pix2pixhd_stage2_tiny/all_stages": (
        ["conf/experiment/pix2pixhd_stage2_tiny.yaml"],
        ALL_STAGES,
        5,
    ),
    "daffgan_stage1_tiny": (["conf/experiment/pix2pixhd_stage1_tiny.yaml", DAFF], [], 5),
    "daffgan_stage2_tiny": (["conf/experiment/pix2pixhd_stage2_tiny.yaml", DAFF], [], 5),
    "daffgan_stage2_tiny/all_stages": (
        ["conf/experiment/pix2pixhd_stage2_tiny.yaml", DAFF],
        ALL_STAGES,
        5,
    ),
    "template_tiny": (["conf/experiment/template_tiny.yaml"], [], 5),
    "diffusion_tiny": (["conf/experiment/diffusion_tiny.yaml"], [], 5),
    "model/baseline_unet_tiny": ([*SAMPLE, "conf/model/baseline_unet_tiny.yaml"], [], 5),
    "model/cgan_segmenter_tiny": ([*SAMPLE, "conf/model/cgan_segmenter_tiny.yaml"], [], 5),
    "model/cyclegan_tiny": ([*SAMPLE, "conf/model/cyclegan_tiny.yaml"], [], 5),
}

# Cases whose batches do not reach every phase (the others do: a parameter in an optimizer that
# no optimizer step of theirs saw a gradient for is one that would never train).
PARTIAL_PHASES = {
    "hou2017_refiner_tiny",
    "hou2019_refiner_tiny",
    "pix2pixhd_stage1_tiny",
    "pix2pixhd_stage2_tiny",
    "daffgan_stage1_tiny",
    "daffgan_stage2_tiny",
}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def recorded() -> dict:
    return json.loads(FIXTURE.read_text()) if FIXTURE.exists() else {}


@pytest.mark.parametrize("name", CASES)
def test_first_step_losses_match_the_fixture(tmp_path, monkeypatch, one_thread, name):
    monkeypatch.chdir(REPO)
    configs, extra, steps = CASES[name]
    recorded_steps = first_steps(tmp_path, configs, extra, steps)
    losses = recorded_steps["batch"]
    assert len(losses) == steps and all(losses), losses  # every batch logged a loss
    if name not in PARTIAL_PHASES:  # every optimizer's parameters all take part in training
        assert recorded_steps["without_gradient"] == []
    if RECORD:
        assert CAPABILITY in FIXTURES, f"no fixture for {CAPABILITY} CPUs: add one to FIXTURES"
        fixture = recorded()
        fixture[name] = losses
        FIXTURE.write_text(json.dumps(dict(sorted(fixture.items())), indent=1) + "\n")
        return
    if CAPABILITY not in FIXTURES:
        pytest.skip(f"no first-step losses recorded for {CAPABILITY} CPUs (see the docstring)")
    expected = recorded()[name]
    assert [sorted(batch) for batch in losses] == [sorted(batch) for batch in expected]
    for step, (got, want) in enumerate(zip(losses, expected)):
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-7), (step, key)
