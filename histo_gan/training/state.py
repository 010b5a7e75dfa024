"""Checkpointed state of a module beyond its parameters: one explicit registry.

GAN modules keep helpers whose state decides what happens next (replay buffers, phase
positions, random generators). A module registers each one by name::

    self.register_state("fake_image_pool", self.fake_image_pool)

and :class:`CheckpointedState` saves every registered helper's ``state_dict()`` under
``checkpoint["module_state"][name]`` and restores it on load. Its hooks chain ``super()``, so
it composes with any other mixin that saves state of its own.
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol

__all__ = ["CheckpointedState", "Stateful"]

CHECKPOINT_KEY = "module_state"


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class CheckpointedState:
    """LightningModule mixin: helpers registered with :meth:`register_state` live in checkpoints."""

    def register_state(self, name: str, helper: Stateful) -> None:
        registry = self.__dict__.setdefault("_registered_state", {})
        if name in registry:
            raise ValueError(f"{type(self).__name__}: state {name!r} is registered twice")
        registry[name] = helper

    def registered_state(self) -> dict[str, Stateful]:
        return dict(self.__dict__.get("_registered_state", {}))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[CHECKPOINT_KEY] = {
            name: helper.state_dict() for name, helper in self.registered_state().items()
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint.get(CHECKPOINT_KEY, {})
        missing = sorted(set(self.registered_state()) - set(saved))
        if missing:
            warnings.warn(
                f"{type(self).__name__}: the checkpoint holds no state for {missing}; they start "
                "fresh (fine for test/predict, not a bit-exact resume)",
                stacklevel=2,
            )
        for name, helper in self.registered_state().items():
            if name in saved:
                helper.load_state_dict(saved[name])
