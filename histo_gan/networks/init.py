"""Weight initialisation as configuration: objects that initialise a network in place.

A module takes a :class:`WeightInit` per network (``class_path`` in YAML) and applies it once,
in its constructor, after the networks are built:

- :class:`NormalInit`: pix2pix / CycleGAN's N(0, std) convolutions (:func:`init_weights`);
- :class:`TorchDefaultInit`: the network as constructed (PyTorch's own initialisation);
- :class:`IdentityRefinerInit`: :class:`NormalInit`, then the refiner's residual head zeroed
  so that it starts as the exact identity (the Hou refiners).
"""

from __future__ import annotations

from torch import nn

__all__ = ["IdentityRefinerInit", "NormalInit", "TorchDefaultInit", "WeightInit", "init_weights"]


class WeightInit:
    """``init(network) -> network``, initialised in place."""

    def __call__(self, network: nn.Module) -> nn.Module:
        raise NotImplementedError


class TorchDefaultInit(WeightInit):
    """Keep the initialisation the layers were constructed with."""

    def __call__(self, network: nn.Module) -> nn.Module:
        return network


class NormalInit(WeightInit):
    """:func:`init_weights` with ``std``."""

    def __init__(self, std: float = 0.02) -> None:
        self.std = std

    def __call__(self, network: nn.Module) -> nn.Module:
        return init_weights(network, self.std)


class IdentityRefinerInit(NormalInit):
    """:class:`NormalInit`, then ``network.zero_residual()``: the refiner starts as the identity."""

    def __call__(self, network: nn.Module) -> nn.Module:
        if not hasattr(network, "zero_residual"):
            raise ValueError(
                f"IdentityRefinerInit: {type(network).__name__} has no zero_residual()"
            )
        return super().__call__(network).zero_residual()


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
