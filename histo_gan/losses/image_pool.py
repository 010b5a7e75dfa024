"""A history of generated images for the discriminator (Shrivastava et al. 2017)."""

from __future__ import annotations

import torch

__all__ = ["ImagePool"]


class ImagePool:
    """Holds up to ``size`` past generated images.

    ``query(images)`` stores each new image while the pool is not full and returns it; once
    full, each image is, with probability 0.5, swapped with a random stored image (the stored
    one is returned and the new one kept), and otherwise returned as is. Returned tensors are
    detached. ``size=0`` passes images through.

    Args:
        size: capacity in images.
        seed: seed of the pool's own random generator (draws do not touch the global RNG).
    """

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, ...)`` new images -> ``(B, ...)`` images for the discriminator (detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                index = int(torch.randint(len(self.images), (), generator=self.generator))
                out.append(self.images[index].to(image.device))
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        stored = torch.stack(self.images).cpu() if self.images else None
        return {"size": self.size, "images": stored, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.size = state["size"]
        self.images = [] if state["images"] is None else list(state["images"])
        self.generator.set_state(state["generator"])
