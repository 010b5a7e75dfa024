from __future__ import annotations

import math

import pytest
import torch

from histo_gan.losses import (
    HingeGANLoss,
    LSGANLoss,
    ReplayBuffer,
    VanillaGANLoss,
    WassersteinGANLoss,
    cycle_loss,
    gradient_penalty,
    identity_loss,
    l1_loss,
)

REAL = torch.tensor([2.0, 0.0])
FAKE = torch.tensor([-1.0, 1.0])


def softplus(x):
    return math.log1p(math.exp(x))


def test_vanilla_loss_by_hand():
    loss = VanillaGANLoss()
    # BCE(real=1) = softplus(-x); BCE(fake=0) = softplus(x)
    d = (softplus(-2) + softplus(0)) / 2 + (softplus(-1) + softplus(1)) / 2
    assert loss.discriminator_loss(REAL, FAKE).item() == pytest.approx(d, abs=1e-6)
    assert loss.generator_loss(FAKE).item() == pytest.approx(
        (softplus(1) + softplus(-1)) / 2, abs=1e-6
    )


def test_lsgan_hinge_wasserstein_by_hand():
    assert LSGANLoss().discriminator_loss(REAL, FAKE).item() == pytest.approx(
        (1 + 1) / 2 + (1 + 1) / 2
    )
    assert LSGANLoss().generator_loss(FAKE).item() == pytest.approx((4 + 0) / 2)
    # hinge D: relu(1-2)=0, relu(1-0)=1 -> 0.5; relu(1-1)=0, relu(1+1)=2 -> 1.0
    assert HingeGANLoss().discriminator_loss(REAL, FAKE).item() == pytest.approx(1.5)
    assert HingeGANLoss().generator_loss(FAKE).item() == pytest.approx(0.0)
    assert WassersteinGANLoss().discriminator_loss(REAL, FAKE).item() == pytest.approx(-1.0)


def test_multiscale_logits_are_averaged_and_features_skipped():
    loss = LSGANLoss()
    scales = [
        [torch.zeros(3), torch.ones(2)],
        [torch.zeros(3), torch.zeros(2)],
    ]  # (features, logit)
    # generator: scale 1 logits 1 -> 0; scale 2 logits 0 -> 1; mean 0.5
    assert loss.generator_loss(scales).item() == pytest.approx(0.5)
    assert loss.generator_loss([torch.ones(2), torch.zeros(2)]).item() == pytest.approx(0.5)


class LinearCritic(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        return (x.flatten(1) * self.w).sum(1)


def test_gradient_penalty_of_a_linear_critic_by_hand():
    # f(x) = w . x has gradient w everywhere: penalty = weight * (||w|| - 1)^2 for any eps.
    w = torch.tensor([3.0, 4.0, 0.0, 0.0])  # ||w|| = 5
    critic = LinearCritic(w)
    real, fake = torch.randn(6, 4), torch.randn(6, 4)
    penalty = gradient_penalty(critic, real, fake, weight=10.0)
    assert penalty.item() == pytest.approx(10.0 * 16.0)
    penalty.backward()  # d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||
    torch.testing.assert_close(critic.w.grad, 20 * 4 * w / 5)


def test_gradient_penalty_of_a_nonlinear_critic_matches_autograd_by_hand():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1))
    real, fake = torch.randn(4, 3), torch.randn(4, 3)
    generator = torch.Generator().manual_seed(7)
    penalty = gradient_penalty(critic, real, fake, weight=2.0, generator=generator)
    eps = torch.rand((4, 1), generator=torch.Generator().manual_seed(7))
    expected = []
    for x in eps * real + (1 - eps) * fake:
        jac = torch.autograd.functional.jacobian(lambda v: critic(v[None]).sum(), x)
        expected.append((jac.norm() - 1) ** 2)
    assert penalty.item() == pytest.approx(2.0 * torch.stack(expected).mean().item(), rel=1e-5)


def test_gradient_penalty_is_float32_under_autocast():
    critic = LinearCritic(torch.tensor([1.0, 2.0]))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        penalty = gradient_penalty(
            critic, torch.randn(3, 2).bfloat16(), torch.randn(3, 2).bfloat16()
        )
    assert penalty.dtype == torch.float32
    assert penalty.item() == pytest.approx(10.0 * (math.sqrt(5) - 1) ** 2, rel=1e-6)


def test_reconstruction_terms():
    a, b = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    b[1] = 3.0
    assert l1_loss(a, b).item() == pytest.approx(2.0)
    assert l1_loss(a, b, torch.tensor([3.0, 1.0])).item() == pytest.approx((3 * 1 + 1 * 3) / 4)
    assert cycle_loss(a, b, weight=10.0).item() == pytest.approx(20.0)
    assert identity_loss(a, b, cycle_weight=10.0, identity_weight=0.5).item() == pytest.approx(10.0)


def exchange(buffer: ReplayBuffer, images: torch.Tensor) -> torch.Tensor:
    return buffer.exchange(image=images)["image"]


def test_replay_exchange_capacity_detach_and_pass_through():
    pool = ReplayBuffer(capacity=3)
    x = torch.randn(5, 1, 2, 2, requires_grad=True)
    out = exchange(pool, x * 2)
    assert len(pool) == 3 and out.shape == x.shape and not out.requires_grad
    torch.testing.assert_close(out[:3], (x * 2)[:3].detach())  # filling phase returns inputs
    for _ in range(20):
        exchange(pool, torch.randn(4, 1, 2, 2))
        assert len(pool) == 3
    assert exchange(ReplayBuffer(0), x).requires_grad is False


def test_replay_exchange_swaps_with_probability_one_half():
    pool = ReplayBuffer(capacity=10, seed=3)
    exchange(pool, torch.full((10, 1), -1.0))  # fill with -1 markers
    swapped = 0
    draws = 4000
    for k in range(draws):
        out = exchange(pool, torch.full((1, 1), float(k)))
        swapped += int(out.item() != k)
    # Binomial(4000, 0.5): sd 31.6; 5 sd
    assert abs(swapped - draws / 2) < 5 * math.sqrt(draws / 4)


def test_replay_exchange_state_round_trip():
    pool = ReplayBuffer(capacity=4, seed=1)
    exchange(pool, torch.randn(6, 2))
    copy = ReplayBuffer(capacity=4)
    copy.load_state_dict(pool.state_dict())
    x = torch.randn(8, 2)
    torch.testing.assert_close(exchange(copy, x), exchange(pool, x))


def test_replay_buffer_loads_an_image_pool_state_of_older_checkpoints():
    images = torch.arange(6.0).reshape(3, 2)
    generator = torch.Generator().manual_seed(7)
    buffer = ReplayBuffer(capacity=1)
    buffer.load_state_dict({"size": 4, "images": images, "generator": generator.get_state()})
    assert len(buffer) == 3 and buffer.capacity == 4
    torch.testing.assert_close(buffer.stored["image"][:3], images)
    out = exchange(buffer, torch.full((1, 2), -1.0))  # fills the 4th slot
    torch.testing.assert_close(out, torch.full((1, 2), -1.0))
    assert len(buffer) == 4
