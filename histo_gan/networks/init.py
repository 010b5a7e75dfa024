"""Weight initialisation of the pix2pix / CycleGAN family."""

from __future__ import annotations

from torch import nn

__all__ = ["init_weights"]


def init_weights(network: nn.Module, std: float = 0.02) -> nn.Module:
    """Convolution weights ~ N(0, std), biases 0; BatchNorm weights ~ N(1, std), biases 0.

    Spectral-normalised convolutions are initialised through their original weight.
    """
    for module in network.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            parametrized = getattr(module, "parametrizations", None)
            weight = (
                parametrized.weight.original
                if parametrized is not None and hasattr(parametrized, "weight")
                else module.weight
            )
            nn.init.normal_(weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, std)
            nn.init.zeros_(module.bias)
    return network
