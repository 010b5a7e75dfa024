"""What a paired image-to-image GAN translates: the two stages of DAFF-GAN as small objects.

A *pairing* turns a training batch (``image`` H&E in [0, 1], ``label`` instance maps) into the
generator's input and target, both ``float32`` ``(B, 3, H, W)`` in [-1, 1], and a generator
output back into a :class:`~histo_gan.types.SynthesisPrediction`. The module
(:class:`~histo_gan.modules.Pix2PixHDModule`) is the same for both stages; the pairing is
injected by configuration.

- :class:`CentroidsToMask` (stage 1, G1): centroid-point map -> nucleus mask. The paper's G1
  outputs "different types of nuclei masks"; MoNuSeg has no types, so the target is the
  one-hot background / interior / boundary encoding of :class:`MaskEncoding`, whose boundary
  class keeps touching nuclei apart so that instances survive the translation.
- :class:`MaskToImage` (stage 2, G2): the same encoding of a label map -> H&E. The boundary
  channel is the "instance boundary map" of pix2pixHD, folded into the mask image.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from histo_gan.metrics.postprocess import InstancePostprocessor
from histo_gan.synthesis.masks import centroid_point_map
from histo_gan.training.mask_encoding import MaskEncoding
from histo_gan.types import SynthesisPrediction, to_signed, to_unit

__all__ = ["CentroidsToMask", "MaskToImage", "Pairing"]


class Pairing:
    """Interface: ``inputs``/``targets`` of a batch, pictures for sample grids, and
    ``prediction`` (generator output -> what ``predict`` exports). Channels are 3 both ways."""

    def inputs(self, batch: Mapping) -> torch.Tensor:
        raise NotImplementedError

    def targets(self, batch: Mapping) -> torch.Tensor:
        raise NotImplementedError

    def input_picture(self, inputs: torch.Tensor) -> torch.Tensor:
        return to_unit(inputs)

    def output_picture(self, output: torch.Tensor) -> torch.Tensor:
        return to_unit(output)

    def prediction(self, output: torch.Tensor, batch: Mapping) -> SynthesisPrediction:
        raise NotImplementedError


class CentroidsToMask(Pairing):
    """Stage 1: centroid-point map -> encoded nucleus mask; predictions are instance maps.

    The input is recomputed from ``batch["label"]`` with the same function that
    ``histo-gan synthesize --method centroids`` uses for the images it stores
    (:func:`~histo_gan.synthesis.centroid_point_map`: a white disc of ``radius`` at each
    instance centroid, -1 elsewhere, the same in all 3 channels), so training on real label
    maps and predicting from a centroids dataset see the same inputs. The stored centroid
    image is therefore not read; only the label map's centroids matter.

    Mask -> instances: the output is decoded to background / interior / boundary
    probabilities (:meth:`MaskEncoding.to_probabilities`), and ``postprocess`` (the shared
    :class:`InstancePostprocessor`: connected components of interior pixels as markers,
    marker-controlled watershed over the foreground, so the boundary pixels join the nearest
    interior, then small objects removed) makes the ``int32`` label map.

    Args:
        boundary_width: boundary thickness of the target encoding, pixels.
        radius: radius of the centroid discs, pixels (2, as ``synthesize``'s default).
        postprocess: probabilities -> instance map (default settings of the shared one).
    """

    def __init__(
        self,
        boundary_width: int = 1,
        radius: int = 2,
        postprocess: InstancePostprocessor | None = None,
    ) -> None:
        self.encoding = MaskEncoding(boundary_width)
        self.radius = radius
        self.postprocess = postprocess or InstancePostprocessor()

    def inputs(self, batch: Mapping) -> torch.Tensor:
        labels = batch["label"].cpu().numpy()
        points = np.stack([centroid_point_map(label, self.radius) for label in labels])
        points = torch.from_numpy(points).permute(0, 3, 1, 2).float() / 255.0
        return to_signed(points).to(batch["label"].device)

    def targets(self, batch: Mapping) -> torch.Tensor:
        return self.encoding.encode(batch["label"])

    def output_picture(self, output: torch.Tensor) -> torch.Tensor:
        return self.encoding.to_rgb(output)

    def instances(self, output: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` generator output -> ``int32`` ``(B, H, W)`` instance label maps."""
        probabilities = self.encoding.to_probabilities(output).cpu()
        labels = [torch.from_numpy(self.postprocess(p)) for p in probabilities]
        return torch.stack(labels).to(torch.int32)

    def prediction(self, output: torch.Tensor, batch: Mapping) -> SynthesisPrediction:
        """The instances of G1's mask and their picture (interior white, boundary red)."""
        label = self.instances(output)
        picture = self.encoding.to_rgb(self.encoding.encode(label))
        return {"image": picture, "label": label, "image_id": list(batch["image_id"])}


class MaskToImage(Pairing):
    """Stage 2: encoded label map (background / interior / boundary) -> H&E.

    Args:
        boundary_width: boundary thickness of the input encoding, pixels.
    """

    def __init__(self, boundary_width: int = 1) -> None:
        self.encoding = MaskEncoding(boundary_width)

    def inputs(self, batch: Mapping) -> torch.Tensor:
        return self.encoding.encode(batch["label"])

    def targets(self, batch: Mapping) -> torch.Tensor:
        return to_signed(batch["image"])

    def input_picture(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.encoding.to_rgb(inputs)

    def prediction(self, output: torch.Tensor, batch: Mapping) -> SynthesisPrediction:
        """Synthetic H&E with the exact input label maps (instances are not re-segmented)."""
        return {
            "image": to_unit(output),
            "label": batch["label"],
            "image_id": list(batch["image_id"]),
        }
