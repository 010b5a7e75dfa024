"""Criss-cross attention (CCNet, Huang et al. 2019), as used by DAFF-GAN.

Each position attends to the positions of its own row and its own column (``H + W - 1`` of
them, itself once). Applying the block twice with the same weights (recurrence 2) lets every
position reach every other: position ``(h, w)`` sees ``(h', w)`` in the first pass, which has
already gathered its whole row ``(h', :)``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CrissCrossAttention"]


class CrissCrossAttention(nn.Module):
    """Recurrent criss-cross attention with a learnable residual scale ``gamma`` (starts at 0).

    One pass: ``x + gamma * (A_row(v) + A_col(v))`` where queries and keys are 1x1
    projections of ``x`` to ``channels // reduction`` channels, values a 1x1 projection to
    ``channels``, and one softmax runs over the ``H + W`` column-and-row energies of each
    position. The position itself appears in both its row and its column; as in CCNet its
    column entry is set to ``-inf`` so it is counted once. The same weights are applied
    ``recurrence`` times.

    Args:
        channels: input and output channels ``C``.
        reduction: query/key width is ``max(1, C // reduction)`` (8 in CCNet).
        recurrence: passes through the block (2 in CCNet; 1 is a single criss-cross).

    Forward: ``(B, C, H, W)`` of any floating dtype on any device -> same shape and dtype.
    Energies and softmax are computed in float32 (also under autocast); with ``gamma = 0``
    the block is exactly the identity.
    """

    def __init__(self, channels: int, reduction: int = 8, recurrence: int = 2) -> None:
        super().__init__()
        if recurrence < 1:
            raise ValueError(f"recurrence must be >= 1, got {recurrence}")
        inner = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.recurrence = recurrence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.recurrence):
            x = self._single_pass(x)
        return x

    def _single_pass(self, x: torch.Tensor) -> torch.Tensor:
        column, row = self._attention(x)
        value = self.value(x)
        # column[b, h, w, k] weights value[b, :, k, w]; row[b, h, w, k] weights value[b, :, h, k].
        out = torch.einsum("bhwk,bckw->bchw", column.to(value.dtype), value)
        out = out + torch.einsum("bhwk,bchk->bchw", row.to(value.dtype), value)
        return x + self.gamma.to(out.dtype) * out

    def _attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float32 weights of one pass: column ``(B, H, W, H)`` and row ``(B, H, W, W)``;
        for each position the two together sum to 1."""
        height, width = x.shape[-2:]
        query, key = self.query(x).float(), self.key(x).float()
        column = torch.einsum("bchw,bckw->bhwk", query, key)
        self_in_column = torch.eye(height, dtype=torch.bool, device=x.device)  # [h, k]: k == h
        column = column.masked_fill(self_in_column[:, None, :], float("-inf"))
        row = torch.einsum("bchw,bchk->bhwk", query, key)
        weights = torch.softmax(torch.cat([column, row], dim=-1), dim=-1)
        return weights[..., :height], weights[..., height:]

    @torch.no_grad()
    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Dense weights of the first pass, ``(B, H*W, H*W)`` float32: row ``i`` (query position
        ``i = h * W + w``) holds the weights over all key positions. Non-zero only on the
        criss-cross of ``i``; each row sums to 1. Memory ``O((HW)^2)``: for small inputs."""
        batch, _, height, width = x.shape
        column, row = self._attention(x)
        eye_h = torch.eye(height, device=x.device)
        eye_w = torch.eye(width, device=x.device)
        dense = torch.einsum("bhwk,wv->bhwkv", column, eye_w)  # key (k, v) with v == w
        dense = dense + torch.einsum("bhwv,hk->bhwkv", row, eye_h)  # key (k, v) with k == h
        return dense.reshape(batch, height * width, height * width)
