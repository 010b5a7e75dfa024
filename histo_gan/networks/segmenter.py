"""Segmentation networks built on segmentation-models-pytorch."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["SmpUnet"]


class SmpUnet(nn.Module):
    """An smp U-Net without downloaded weights; encoder weights come from a local file if given.

    Runs channels-last (``channels_last = True``, :mod:`histo_gan.precision`): 1.2x in fp32
    and 1.6x under bf16 autocast on a CPU with bf16 units (``benchmarks/training_speed.py``).

    Args:
        encoder_name: any smp encoder (``resnet18``, ``resnet34``, ``efficientnet-b0``, ...).
        encoder_depth: number of encoder stages (3-5); lower for small patches.
        decoder_channels: decoder widths, one per stage (length ``encoder_depth``).
        in_channels: input channels (3 for RGB).
        classes: output channels (logits).
        encoder_weights_path: a ``state_dict`` file (``.pth``/``.pt``) for the encoder, e.g.
            ImageNet weights saved beforehand; ``None`` trains from scratch.

    Forward: ``(B, in_channels, H, W)`` float -> ``(B, classes, H, W)`` logits; ``H`` and ``W``
    must be multiples of ``2 ** encoder_depth``.
    """

    channels_last = True

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16),
        in_channels: int = 3,
        classes: int = 3,
        encoder_weights_path: str | None = None,
    ) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        if len(decoder_channels) != encoder_depth:
            raise ValueError(
                f"decoder_channels needs {encoder_depth} entries (one per encoder stage), "
                f"got {len(decoder_channels)}"
            )
        self.net = smp.Unet(
            encoder_name=encoder_name,
            encoder_depth=encoder_depth,
            encoder_weights=None,
            decoder_channels=list(decoder_channels),
            in_channels=in_channels,
            classes=classes,
        )
        self.multiple = 2**encoder_depth
        self._remove_unused(in_channels)
        if encoder_weights_path is not None:
            path = Path(encoder_weights_path)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: encoder weights file does not exist")
            state = torch.load(path, map_location="cpu", weights_only=True)
            missing, unexpected = self.net.encoder.load_state_dict(state, strict=False)
            if len(missing) == len(self.net.encoder.state_dict()):
                raise ValueError(f"{path}: no tensor matches the {encoder_name} encoder")

    def _remove_unused(self, in_channels: int) -> None:
        """Remove the modules the network never uses: smp keeps the encoder stages beyond
        ``encoder_depth`` (``layer4`` of a ResNet at depth 4: 8.4M of resnet18's 11.2M
        encoder parameters), which would otherwise sit in the optimizer, the parameter count
        and every checkpoint, and make DDP wait for their gradients. A probe batch finds
        them: a module none of whose parameters gets a gradient is set to ``None``."""
        self.net.train()
        probe = torch.zeros(2, in_channels, 2 * self.multiple, 2 * self.multiple)
        self.net(probe).sum().backward()
        unused = [
            name
            for name, module in self.net.named_modules()
            if name
            and any(True for _ in module.parameters())
            and all(p.grad is None for p in module.parameters())
        ]
        for name in unused:
            if any(name.startswith(f"{outer}.") for outer in unused):
                continue  # inside a module that goes as a whole
            parent, _, child = name.rpartition(".")
            setattr(self.net.get_submodule(parent), child, None)
        self.net.zero_grad(set_to_none=True)
        for module in self.net.modules():  # undo the probe's update of BatchNorm statistics
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise ValueError(
                f"input size {tuple(x.shape[-2:])} is not a multiple of {self.multiple}"
            )
        return self.net(x)
