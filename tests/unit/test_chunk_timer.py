"""The chunk timer stops after the same batch in every process: rank 0's clock decides."""

from __future__ import annotations

from types import SimpleNamespace

from histo_gan.callbacks import ChunkTimer


class RankZeroSays:
    """A strategy stand-in whose broadcast returns rank 0's value, as DDP's does."""

    def __init__(self, rank_zero_value: bool) -> None:
        self.rank_zero_value, self.sent = rank_zero_value, []

    def broadcast(self, obj, src: int = 0):
        self.sent.append((obj, src))
        return self.rank_zero_value


def batch_end(timer: ChunkTimer, rank_zero_value: bool) -> SimpleNamespace:
    trainer = SimpleNamespace(should_stop=False, strategy=RankZeroSays(rank_zero_value))
    timer.on_train_batch_end(trainer, None, None, None, 0)
    return trainer


def test_a_rank_whose_own_clock_ran_out_goes_on_until_rank_zero_stops():
    timer = ChunkTimer(max_minutes=1e-9)
    timer.on_train_start(None, None)  # this process's time is up at once
    trainer = batch_end(timer, rank_zero_value=False)
    # each rank sends its own verdict and gets rank 0's back
    assert trainer.strategy.sent == [(True, 0)]
    assert not trainer.should_stop and not timer.stopped_early
    trainer = batch_end(timer, rank_zero_value=True)
    assert trainer.should_stop and timer.stopped_early


def test_a_rank_with_time_left_stops_when_rank_zero_does():
    timer = ChunkTimer(max_minutes=60)
    timer.on_train_start(None, None)
    trainer = batch_end(timer, rank_zero_value=True)
    assert trainer.strategy.sent == [(False, 0)]
    assert trainer.should_stop and timer.stopped_early


def test_before_training_starts_nothing_is_asked_or_stopped():
    timer = ChunkTimer(max_minutes=1e-9)
    trainer = batch_end(timer, rank_zero_value=True)
    assert trainer.strategy.sent == [] and not trainer.should_stop
