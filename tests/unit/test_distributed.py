"""What every process of a distributed job must get right on its own: its share of the patch
keys, whether it is the one that makes the run folder, and its thread budget."""

from __future__ import annotations

import cv2
import pytest
from threadpoolctl import threadpool_info

from histo_gan.data.patches import EpochKeySampler, KeyShardSampler
from histo_gan.distributed import is_first_process
from histo_gan.synthesis import cli as synthesize_cli
from histo_gan.threads import limit_threads


@pytest.mark.parametrize("length, world", [(12, 2), (13, 2), (13, 3), (48, 8), (5, 5)])
def test_each_key_goes_to_one_process_and_all_get_as_many(length, world):
    keys = list(EpochKeySampler(length, seed=3))
    shards = [
        list(KeyShardSampler(EpochKeySampler(length, seed=3), world, r)) for r in range(world)
    ]
    assert {len(shard) for shard in shards} == {length // world}
    drawn = [key for shard in shards for key in shard]
    assert len(set(drawn)) == len(drawn)  # no key trained twice
    assert sorted(drawn) == sorted(keys[: world * (length // world)])


def test_shards_follow_the_epoch_lightning_sets():
    shard = KeyShardSampler(EpochKeySampler(8, seed=0), num_replicas=2, rank=1)
    shard.set_epoch(5)
    fifth = EpochKeySampler(8, seed=0)
    fifth.set_epoch(5)
    assert list(shard) == list(fifth)[1::2]
    assert list(shard) != list(KeyShardSampler(EpochKeySampler(8, seed=0), 2, 1))


@pytest.mark.parametrize(
    "environ, first",
    [
        ({}, True),
        ({"RANK": "0", "LOCAL_RANK": "0", "GROUP_RANK": "0"}, True),  # torchrun, rank 0
        ({"RANK": "3", "LOCAL_RANK": "1", "GROUP_RANK": "1"}, False),  # torchrun, rank 3
        ({"SLURM_PROCID": "0", "SLURM_NTASKS": "8"}, True),
        ({"SLURM_PROCID": "5", "SLURM_NTASKS": "8"}, False),
        ({"NODE_RANK": "1"}, False),  # by-hand multi-node, second node, its first process
        ({"NODE_RANK": "0", "LOCAL_RANK": "1"}, False),  # a process Lightning launched
    ],
)
def test_only_the_first_process_of_a_job_is_first(environ, first):
    assert is_first_process(environ) is first


@pytest.fixture
def restored_threads():
    cv2_threads = cv2.getNumThreads()
    yield
    limit_threads(cv2_threads)


def test_synthesize_workers_run_opencv_and_blas_on_one_thread(restored_threads):
    limit_threads(2)
    synthesize_cli._init_worker(None)
    assert cv2.getNumThreads() == 1
    assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {1}
