"""Learning checks of the Hou refiner on real MoNuSeg patches (issue 11), through the functions
of benchmarks/hou_refiner_learning.py: 48 initial patches (``synthesize --method hou``, seed 0),
tiny G and D, 64-px patches, batch 8, held-out batch of 64 pairs (data seed 99).

Measured (CPU, ``--identity-steps 100 --pretrain 40 --rounds 120``, training seeds 0 and 1;
96 initial patches):

- ``L_reg`` only, 100 steps, Adam 1e-3, G re-drawn with PyTorch's default init: eval-mode mean
  ``|X - I|`` 0.038 -> 0.0017 (seed 0), 0.031 -> 0.0011 (seed 1). Bound here: < 0.006 and
  < 1/5 of the start. Before the fix (batch-norm G) it was 0.0003 -> 0.019.
- Adversarial, 320 batches (40 G + 40 D + 120 x (G, D)), G from the identity: mean ``|X - I|``
  0.0025 / 0.0042; D's held-out accuracy 0.47 / 0.54; distance of the refined stain to the real
  patches (mean H, W1 of H, mean E, W1 of E, all pixels) vs the initial patches' 0.0028,
  0.0071, 0.0026, 0.0030: seed 0 0.0019, 0.0066, 0.0029, 0.0032; seed 1 0.0038, 0.0074, 0.0031,
  0.0033: D does not learn at this budget, so the adversarial acceptance check (D above chance,
  stain moving towards the real patches) is not met and not asserted here; the benchmark's
  docstring holds what was found (D's N(0, 0.02) init with batch norm, the summed per-location
  loss, the balance of L_real against L_reg).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "hou_refiner_learning.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("hou_refiner_learning", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup(bench, shared_data, tmp_path_factory):
    bench.MONUSEG = shared_data
    initial = bench.synthesize(tmp_path_factory.mktemp("hou_learning"), n=48)
    return initial, bench.held_out_batch(initial)


def test_reg_only_converges_to_identity(bench, setup):
    result = bench.identity_check(*setup, steps=100, seed=0)
    assert result["mean_abs_change_before"] > 0.02  # a real random start
    assert result["mean_abs_change_after"] < 0.006
    assert result["mean_abs_change_after"] < result["mean_abs_change_before"] / 5
