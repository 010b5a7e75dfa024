"""pix2pixHD's optional VGG19 perceptual loss, with weights only from a local file."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

__all__ = ["VGGPerceptualLoss"]

# torchvision's vgg19.features[:30] cut after relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
_SLICE_ENDS = (2, 7, 12, 21, 30)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGPerceptualLoss(nn.Module):
    """``weight * sum_i w_i * L1(vgg_i(fake), vgg_i(real))`` over relu1_1 .. relu5_1 of VGG19.

    The VGG19 weights are read from ``weights_path`` only: a ``torch.save``'d state dict of
    torchvision's ``vgg19`` (e.g. the file torchvision would download, ``vgg19-dcbb9e9d.pth``),
    or of its ``features`` part alone. Nothing is ever downloaded. With no path, or a path that
    does not exist, the loss is off: it warns once, at construction, and returns 0.

    The VGG is frozen and kept outside the module tree: it is not in ``state_dict`` (no
    checkpoint bloat; a resumed run re-reads the file), not seen by optimizers or DDP, and is
    moved to the input's device on first use.

    Args:
        weights_path: local VGG19 state dict, or ``None`` for off.
        layer_weights: ``w_i`` of relu1_1 .. relu5_1 (pix2pixHD: 1/32, 1/16, 1/8, 1/4, 1).
        weight: lambda of the term (10 in pix2pixHD).

    Forward: ``(fake, real)``, ``(B, 3 or 1, H, W)`` in [-1, 1] (one channel is repeated to
    three) -> float32 scalar. Gradients flow into ``fake`` only. The inputs are mapped to
    [0, 1] and ImageNet-normalised, as torchvision's weights expect (pix2pixHD's code skips
    that normalisation).
    """

    def __init__(
        self,
        weights_path: str | Path | None = None,
        layer_weights: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0),
        weight: float = 10.0,
    ) -> None:
        super().__init__()
        if len(layer_weights) != len(_SLICE_ENDS):
            raise ValueError(f"need {len(_SLICE_ENDS)} layer weights, got {len(layer_weights)}")
        self.layer_weights, self.weight = tuple(layer_weights), weight
        self._vgg: list[nn.Module] = []  # a list keeps the VGG out of the module tree
        if weights_path is None or not Path(weights_path).is_file():
            reason = (
                "no weights_path given" if weights_path is None else f"{weights_path} not found"
            )
            warnings.warn(
                f"VGG perceptual loss is OFF ({reason}); it returns 0. Pass weights_path=<a local "
                "torchvision vgg19 state dict> to enable it (weights are never downloaded).",
                UserWarning,
                stacklevel=2,
            )
            return
        self._vgg.append(_load_vgg19_features(Path(weights_path)))

    @property
    def enabled(self) -> bool:
        return bool(self._vgg)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return torch.zeros((), device=fake.device)
        vgg = self._vgg[0]
        if next(vgg.parameters()).device != fake.device:
            vgg.to(fake.device)
        fake_x, real_x = _normalise(fake), _normalise(real.detach())
        loss = torch.zeros((), device=fake.device)
        start = 0
        for end, layer_weight in zip(_SLICE_ENDS, self.layer_weights):
            block = vgg[start:end]
            fake_x, real_x = block(fake_x), block(real_x)
            loss = loss + layer_weight * F.l1_loss(fake_x.float(), real_x.float())
            start = end
        return self.weight * loss


def _normalise(image: torch.Tensor) -> torch.Tensor:
    if image.shape[1] == 1:
        image = image.expand(-1, 3, -1, -1)
    if image.shape[1] != 3:
        raise ValueError(f"the perceptual loss takes 1 or 3 channels, got {image.shape[1]}")
    mean = image.new_tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
    std = image.new_tensor(_IMAGENET_STD).view(1, 3, 1, 1)
    return ((image + 1) / 2 - mean) / std


def _load_vgg19_features(path: Path) -> nn.Sequential:
    """torchvision's VGG19 ``features`` (no classifier), loaded strictly from ``path``,
    cut after relu5_1, frozen, in eval mode."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if any(key.startswith("features.") for key in state):
        state = {
            k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")
        }
    features = make_layers(cfgs["E"], batch_norm=False)  # cfgs["E"] is torchvision's vgg19
    features.load_state_dict(state)
    features = features[: _SLICE_ENDS[-1]]
    features.requires_grad_(False)
    return features.eval()
