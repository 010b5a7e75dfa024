"""On-the-fly initial patches equal the dataset ``histo-gan synthesize`` writes."""

from __future__ import annotations

import numpy as np

from histo_gan.cli import main
from histo_gan.data import GeneratedInitialPatches
from histo_gan.data.sources import bundled_sample_dir
from histo_gan.data.synthetic import SyntheticDataset


def test_generated_initial_patches_equal_the_synthesized_dataset(tmp_path):
    out = tmp_path / "hou"
    assert (
        main(
            [
                "synthesize",
                "--source",
                str(bundled_sample_dir() / "images"),
                "--out",
                str(out),
                "--n",
                "4",
                "--size",
                "64",
                "--seed",
                "3",
                "--grid",
                "0",
            ]
        )
        == 0
    )
    on_disk = SyntheticDataset(out)
    generated = GeneratedInitialPatches(n=4, size=64, seed=3)
    assert len(generated) == 4
    for k in range(4):
        item, stored = generated.load(k), on_disk[k]
        assert np.array_equal(item.image, stored.image), k
        assert np.array_equal(item.label, stored.label), k
        assert item.is_synthetic and item.meta["source_ids"] == stored.meta["source_ids"]
        assert item.organ == stored.organ != "unknown"
    other_seed = GeneratedInitialPatches(n=1, size=64, seed=4).load(0)
    assert not np.array_equal(other_seed.image, generated.load(0).image)
