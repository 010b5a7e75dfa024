"""Spectral normalisation: unit largest singular value after training steps, and checkpoint round trips."""

from __future__ import annotations

import io

import torch

from histo_gan.networks import PatchDiscriminator, init_weights


def normalised_weights(d: PatchDiscriminator):
    for module in d.modules():
        if isinstance(module, torch.nn.Conv2d) and hasattr(module, "parametrizations"):
            yield module.weight  # the parametrised (normalised) weight


def train_a_few_steps(d, steps=30):
    torch.manual_seed(0)
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))
    for _ in range(steps):
        real, fake = torch.randn(4, 3, 32, 32) + 1, torch.randn(4, 3, 32, 32) - 1
        loss = (
            torch.nn.functional.softplus(-d(real)).mean()
            + torch.nn.functional.softplus(d(fake)).mean()
        )
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_largest_singular_value_of_each_normalised_weight_is_one():
    d = PatchDiscriminator(3, base_channels=8, n_layers=2, spectral_norm=True)
    init_weights(d)
    train_a_few_steps(d)
    d.train()
    with torch.no_grad():  # a few more power iterations at the final weights
        for _ in range(20):
            d(torch.randn(2, 3, 32, 32))
    d.eval()
    weights = list(normalised_weights(d))
    assert len(weights) == 4
    for weight in weights:
        sigma = torch.linalg.matrix_norm(weight.detach().reshape(weight.shape[0], -1), ord=2)
        assert abs(sigma.item() - 1.0) < 0.02, sigma.item()
    # and the raw weights are not trivially unit-norm
    raw = d.model[0].parametrizations.weight.original
    assert abs(torch.linalg.matrix_norm(raw.reshape(raw.shape[0], -1), ord=2).item() - 1.0) > 0.05


def test_checkpoint_round_trip_restores_identical_outputs():
    d = PatchDiscriminator(3, base_channels=8, n_layers=2, spectral_norm=True, condition_channels=1)
    init_weights(d)
    train_a_few_steps_conditional(d)
    d.eval()
    x, c = torch.randn(2, 3, 32, 32), torch.randn(2, 1, 32, 32)
    expected = d(x, c)
    buffer = io.BytesIO()
    torch.save(d.state_dict(), buffer)
    buffer.seek(0)
    fresh = PatchDiscriminator(
        3, base_channels=8, n_layers=2, spectral_norm=True, condition_channels=1
    )
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    fresh.eval()
    assert torch.equal(fresh(x, c), expected)
    assert any("parametrizations.weight.original" in k for k in d.state_dict())


def train_a_few_steps_conditional(d, steps=5):
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = d(torch.randn(2, 3, 32, 32), torch.randn(2, 1, 32, 32)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
