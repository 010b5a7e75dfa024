"""The replay buffer of every GAN: past generated samples shown to the discriminator again
(Shrivastava et al. 2017; the image pool of pix2pix and CycleGAN).

One class, two ways to use it, both on named ``(B, ...)`` tensors kept together per sample:

- :meth:`ReplayBuffer.exchange` (pix2pix / CycleGAN's pool): each new sample is stored while
  the buffer is not full and returned; once full, with probability 0.5 it takes the place of
  a random stored sample, which is returned instead, and otherwise it is returned as is;
- :meth:`ReplayBuffer.push` and :meth:`ReplayBuffer.sample` (the S+U history of the Hou
  refiners): ``push`` appends until full, then overwrites distinct random stored samples;
  ``sample(n)`` draws ``n`` stored samples uniformly, with replacement.

Draws use the buffer's own generator (never the global RNG), and the state (samples, count,
generator) is saved in checkpoints through :meth:`state_dict`. Samples are stored detached,
on the device they arrive on; a restored buffer moves to the device of the next call. Under
DDP each process keeps its own buffer, seeded alike.
"""

from __future__ import annotations

import torch

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    """Up to ``capacity`` past samples, each a set of named tensors.

    Args:
        capacity: samples kept (0: :meth:`exchange` passes samples through, :meth:`push`
            keeps nothing).
        seed: seed of the buffer's own random generator.
    """

    def __init__(self, capacity: int = 50, seed: int = 0) -> None:
        if capacity < 0:
            raise ValueError(f"replay buffer capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self.stored: dict[str, torch.Tensor] = {}
        self.count = 0
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.count

    def _prepare(self, samples: dict[str, torch.Tensor]) -> None:
        """Allocate storage on the first call; move it to the samples' device."""
        first = next(iter(samples.values()))
        if not self.stored:
            self.stored = {
                k: v.new_zeros((self.capacity, *v.shape[1:])) for k, v in samples.items()
            }
        self.stored = {k: v.to(first.device) for k, v in self.stored.items()}

    def exchange(self, **samples: torch.Tensor) -> dict[str, torch.Tensor]:
        """New samples in, as many samples for the discriminator out (detached), by name."""
        samples = {k: v.detach() for k, v in samples.items()}
        if self.capacity == 0:
            return samples
        self._prepare(samples)
        out = {k: v.clone() for k, v in samples.items()}
        for i in range(len(next(iter(samples.values())))):
            if self.count < self.capacity:
                slot, self.count = self.count, self.count + 1
            elif torch.rand((), generator=self.generator).item() < 0.5:
                slot = int(torch.randint(self.count, (), generator=self.generator))
                for k in samples:
                    out[k][i] = self.stored[k][slot]
            else:
                continue
            for k, v in samples.items():
                self.stored[k][slot] = v[i]
        return out

    def push(self, **samples: torch.Tensor | None) -> None:
        """Store ``(B, ...)`` samples by name (``None`` values are left out)."""
        samples = {k: v.detach()[-self.capacity :] for k, v in samples.items() if v is not None}
        n = len(next(iter(samples.values())))
        if self.capacity == 0 or n == 0:
            return
        self._prepare(samples)
        free = min(self.capacity - self.count, n)
        slots = torch.arange(self.count, self.count + free)
        if n > free:  # full: overwrite distinct random slots
            replaced = torch.randperm(self.count, generator=self.generator)[: n - free]
            slots = torch.cat([slots, replaced])
        for key, value in samples.items():
            self.stored[key][slots.to(value.device)] = value
        self.count += free

    def sample(self, n: int, device: torch.device) -> dict[str, torch.Tensor] | None:
        """``n`` stored samples by name, or ``None`` while fewer than ``n`` are stored."""
        if n <= 0 or self.count < n:
            return None
        self.stored = {k: v.to(device) for k, v in self.stored.items()}
        index = torch.randint(self.count, (n,), generator=self.generator).to(device)
        return {k: v[index] for k, v in self.stored.items()}

    def state_dict(self) -> dict:
        stored = {k: v[: self.count].cpu() for k, v in self.stored.items()}
        return {
            "capacity": self.capacity,
            "count": self.count,
            "stored": stored,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (also an image pool's ``{size, images, generator}``
        from checkpoints written before the buffers were one class: its images are ``image``)."""
        if "images" in state:
            images = state["images"]
            stored = {} if images is None else {"image": images}
            state = {
                "capacity": state["size"],
                "count": 0 if images is None else len(images),
                "stored": stored,
                "generator": state["generator"],
            }
        self.capacity, self.count = int(state["capacity"]), int(state["count"])
        self.stored = {}
        for key, value in state["stored"].items():
            self.stored[key] = value.new_zeros((self.capacity, *value.shape[1:]))
            self.stored[key][: self.count] = value
        self.generator.set_state(state["generator"])
