"""The shared GAN core: budget schedules, phase schedules, the state registry, predictors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from histo_gan.callbacks import InstanceMapWriter, SyntheticExport
from histo_gan.training.phases import Phase, PhasePlan, Rounds
from histo_gan.training.schedules import ConstantRate, LinearDecay, Progress, training_progress
from histo_gan.training.state import CheckpointedState


def fake_trainer(epoch=0, max_epochs=-1, step=0, max_steps=-1):
    return SimpleNamespace(
        current_epoch=epoch,
        max_epochs=max_epochs,
        global_step=step,
        max_steps=max_steps,
        callbacks=[],
    )


def test_linear_decay_matches_the_pix2pix_epoch_schedule():
    schedule = LinearDecay(decay_fraction=0.5)
    # 4 epochs, 2 decaying: 1, 1, 2/3, 1/3 (pix2pix: 1 - max(0, e + 1 - 2) / 3)
    rates = [schedule.factor(Progress(e + 1, 4, 1.0)) for e in range(4)]
    assert rates == pytest.approx([1.0, 1.0, 2 / 3, 1 / 3])
    # 200 epochs: the last runs at 1/101 of the rate
    assert schedule.factor(Progress(200, 200, 1.0)) == pytest.approx(1 / 101)
    assert LinearDecay(0.0).factor(Progress(200, 200, 1.0)) == 1.0


def test_training_progress_takes_the_budget_that_ends_first():
    assert training_progress(fake_trainer()) is None
    by_epochs = training_progress(fake_trainer(epoch=1, max_epochs=10, step=90, max_steps=100))
    assert (by_epochs.position, by_epochs.total) == (91, 100)  # steps: 91% done vs epochs 20%
    by_steps = training_progress(fake_trainer(epoch=5, max_epochs=10, step=10, max_steps=1000))
    assert (by_steps.position, by_steps.total) == (6, 10)


def test_rate_stays_within_zero_and_initial_beyond_a_step_budget():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.5)
    schedule = LinearDecay(0.5)
    rates = []
    for step in range(30):  # max_steps 20, and 10 steps past it (a resumed, extended run)
        schedule.apply([optimizer], fake_trainer(step=step, max_steps=20))
        rates.append(optimizer.param_groups[0]["lr"])
    assert all(0.0 <= r <= 0.5 for r in rates)
    assert rates[0] == 0.5 and rates[9] == 0.5 and rates[19] == pytest.approx(0.5 / 11)
    assert rates[-1] == 0.0
    assert optimizer.param_groups[0]["initial_lr"] == 0.5


def test_extending_the_budget_recomputes_the_rate_from_the_initial_rate():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    schedule = LinearDecay(0.5)
    schedule.apply(optimizer, fake_trainer(epoch=1, max_epochs=2))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)
    state = optimizer.state_dict()  # what a checkpoint keeps
    resumed = torch.optim.SGD([parameter], lr=1.0)
    resumed.load_state_dict(state)
    schedule.apply(resumed, fake_trainer(epoch=2, max_epochs=3))
    assert resumed.param_groups[0]["lr"] == pytest.approx(1 - (3 - 1.5) / 2.5)
    ConstantRate().apply(resumed, fake_trainer(epoch=2, max_epochs=3))
    assert resumed.param_groups[0]["lr"] == 1.0


def test_phase_plan_writes_out_rounds_and_stays_in_the_last_stage():
    plan = PhasePlan(
        [
            Phase("g", 2),
            Phase("d", 1),
            Rounds(2, [Phase("g", 1), Phase("d", 2)]),
            Phase("r", 0),
            Rounds(2, [Phase("g", 1), Phase("d", 1), Phase("r", 1)]),
        ]
    )
    expected = ["g", "g", "d", "g", "d", "d", "g", "d", "d", "g", "d", "r", "g", "d", "r"]
    assert plan.names(15) == expected
    assert plan.names(3, start=15) == ["g", "d", "r"]  # the last Rounds keeps cycling
    for name in expected[:7]:
        assert plan.phase == name
        plan.advance()
    restored = PhasePlan(plan.stages)
    restored.load_state_dict(plan.state_dict())
    assert restored.phase == expected[7] and restored.position == 7
    with pytest.raises(ValueError, match="at least one stage"):
        PhasePlan([Phase("g", 0)])


class Counter:
    def __init__(self):
        self.count = 0

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


class Base:
    def on_save_checkpoint(self, checkpoint):
        checkpoint["base"] = "saved"

    def on_load_checkpoint(self, checkpoint):
        self.base_loaded = checkpoint["base"]


class Module(CheckpointedState, Base):
    def __init__(self):
        self.pool, self.counter = Counter(), Counter()
        self.register_state("pool", self.pool)
        self.register_state("counter", self.counter)


def test_every_registered_helper_survives_a_checkpoint_and_hooks_chain():
    module = Module()
    module.pool.count, module.counter.count = 3, 7
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    restored = Module()
    restored.on_load_checkpoint(checkpoint)
    assert (restored.pool.count, restored.counter.count) == (3, 7)
    assert restored.base_loaded == "saved"  # the other mixin's hook still ran
    with pytest.raises(ValueError, match="registered twice"):
        restored.register_state("pool", Counter())
    with pytest.warns(UserWarning, match="no state for"):
        Module().on_load_checkpoint({"base": "x"})


def test_writers_skip_padding_items_and_refuse_the_wrong_payload(tmp_path):
    writer = InstanceMapWriter(tmp_path / "maps")
    label = np.arange(16, dtype=np.int32).reshape(4, 4)
    writer.write_on_batch_end(
        None, None, {"image_id": "pad", "instances": None, "is_padding": True}, None, None, 0
    )
    writer.write_on_batch_end(
        None, None, {"image_id": "a", "instances": label, "is_padding": False}, None, None, 1
    )
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["a.png"]
    with pytest.raises(ValueError, match="SegmentImages"):
        writer.write_on_batch_end(None, None, {"image": torch.zeros(1, 3, 4, 4)}, None, None, 2)
    export = SyntheticExport(tmp_path / "synthetic")
    export._writer = object()
    with pytest.raises(ValueError, match="SynthesizeImages"):
        export.write_on_batch_end(None, None, {"image_id": "a", "instances": label}, None, None, 0)
