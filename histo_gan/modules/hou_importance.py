"""Hou et al. 2019 (CVPR, "Robust Histopathology Image Analysis: to Label or to Synthesize?")
§3-4: the reference-conditioned refiner whose discriminator importance-weights each refined
patch in the segmenter's loss.

The hou2017 module (:class:`~histo_gan.modules.HardExampleRefinerModule`: same networks, data
and phases; the 2019 paper builds on the same released code) with two changes of defaults:
hou2019's loss weights (§4.2: α 1, β 1, γ 1e-7, λ1 1e-5, λ2 1e-4) and the sample weighting
:class:`~histo_gan.losses.ImportanceWeighting`: a synthetic sample's loss in R's step is
multiplied by ``w = c·p/(1−p)`` (Eq. 5), ``p`` = D's probability (mean over its locations)
that the refined patch X is real in the style of its reference S, computed without gradient
(D in eval mode), clipped to ``clip`` and divided by the mean over the batch's synthetic
samples. Real labeled items of a ``synthetic_ratio < 1`` batch (the "real + synthetic"
ablation) are not refined and keep their own weight. The weights are logged as a histogram
(TensorBoard) every ``histogram_every_n_steps`` batches and as mean/min/max scalars at every
R step; exported patches carry ``c·p/(1−p)`` clipped, not normalised (a predict batch may hold
one sample).

Ablations (hou2019 Tab. 3) by configuration: ``weighting: null`` (no importance weights, and
no D pass for them); ``use_reference: false`` on G and D; ``gamma: 0``;
``data.synthetic_ratio < 1``.

Papers silent: c = 1 (D's batches hold as many fake as real pairs), clip [0.2, 2] (released
code, which does not normalise; normalising keeps R's effective learning rate); γ = 1e-7 (§4.2
also says "down-weight L_hard by 0.0001", the released code uses 1e-7).
"""

from __future__ import annotations

from jsonargparse import lazy_instance

from histo_gan.losses import ImportanceWeighting
from histo_gan.modules.hou_hard_examples import HardExampleRefinerModule

__all__ = ["ImportanceSamplingRefinerModule"]

IMPORTANCE = lazy_instance(ImportanceWeighting)


class ImportanceSamplingRefinerModule(HardExampleRefinerModule):
    """hou2019: :class:`HardExampleRefinerModule` with importance weighting and 2019 weights.

    Takes every argument of :class:`HardExampleRefinerModule` (by keyword); only these
    defaults differ:

    Args:
        beta, gamma, lambda_l1, lambda_l2: hou2019 §4.2's 1, 1e-7, 1e-5, 1e-4 (α stays 1).
        weighting: :class:`~histo_gan.losses.ImportanceWeighting` (c 1, clip [0.2, 2]);
            ``None`` is the "no importance weights" ablation.
    """

    def __init__(
        self,
        *,
        beta: float = 1.0,
        gamma: float = 1e-7,
        lambda_l1: float = 1e-5,
        lambda_l2: float = 1e-4,
        weighting: ImportanceWeighting | None = IMPORTANCE,
        **kwargs,
    ) -> None:
        super().__init__(
            beta=beta,
            gamma=gamma,
            lambda_l1=lambda_l1,
            lambda_l2=lambda_l2,
            weighting=weighting,
            **kwargs,
        )
