"""The WGAN-GP gradient penalty (Gulrajani et al. 2017), always computed in float32."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["gradient_penalty"]


def gradient_penalty(
    critic: Callable[..., torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    condition: torch.Tensor | None = None,
    weight: float = 10.0,
    target_norm: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``weight * mean((||grad_x critic(x_hat)||_2 - target_norm)^2)`` on random interpolates.

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U(0, 1)`` per sample. The
    gradient norm is taken over all non-batch dimensions of ``x_hat`` (the condition, if any,
    is passed to the critic unchanged and is not differentiated). Autocast is disabled and
    inputs are cast to float32, so mixed-precision training gets an fp32 penalty. The graph
    is kept (``create_graph=True``) so the penalty can be back-propagated into the critic.
    """
    device_type = real.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        real, fake = real.detach().float(), fake.detach().float()
        shape = (real.shape[0],) + (1,) * (real.ndim - 1)
        eps = torch.rand(shape, device=real.device, generator=generator)
        mixed = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
        args = (mixed,) if condition is None else (mixed, condition.detach().float())
        scores = critic(*args)
        outputs = (
            scores if isinstance(scores, torch.Tensor) else torch.cat([s.flatten() for s in scores])
        )
        (grad,) = torch.autograd.grad(outputs.sum(), mixed, create_graph=True)
        norms = grad.flatten(1).norm(2, dim=1)
        return weight * ((norms - target_norm) ** 2).mean()
