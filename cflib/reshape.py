r"""Reshaping layers for image flows: squeeze and the multi-scale factor-out of RealNVP.

``Squeeze`` trades space for channels, ``(B, C, H, W) -> (B, 4C, H/2, W/2)``: each 2x2 block of
pixels becomes 4 channels, so a channel split after it mixes neighbouring pixels. It only moves
numbers around, so its log-det is 0.

``FactorOut`` is the multi-scale architecture: the first half of the channels leaves the flow
("is factored out" to the base distribution) and only the second half goes through ``inner``.
Deeper scales therefore work on fewer dimensions, and the factored half is modelled at a coarser
level of the hierarchy.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cflib.transforms import Transform
from cflib.validation import check_finite, check_tensor

__all__ = ["FactorOut", "Squeeze"]


def _check_image(x: object, name: str, finite: bool) -> Tensor:
    x = check_tensor(x, name)
    if x.dim() != 4:
        raise ValueError(
            f"{name}: expected an image batch (batch, C, H, W), got shape {tuple(x.shape)}"
        )
    return check_finite(x, name) if finite else x


class Squeeze(Transform):
    """Space-to-channel: ``(B, C, H, W) -> (B, 4C, H/2, W/2)``; ``inverse`` undoes it; log-det 0.

    Output channel ``4c + 2i + j`` holds the pixels ``x[:, c, 2h + i, 2w + j]``.
    """

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = _check_image(x, "x", self._check_values())
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"x: Squeeze needs an even height and width, got H={h}, W={w}")
        y = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return y.reshape(b, 4 * c, h // 2, w // 2), x.new_zeros(b)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y = _check_image(y, "y", self._check_values())
        b, c4, h, w = y.shape
        if c4 % 4:
            raise ValueError(f"y: Squeeze.inverse needs a channel count divisible by 4, got C={c4}")
        x = y.reshape(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(b, c4 // 4, 2 * h, 2 * w), y.new_zeros(b)


class FactorOut(Transform):
    """Leave the first ``split`` channels unchanged and apply ``inner`` to the rest.

    ``y = [x[:, :split], inner(x[:, split:])]``; ``ladj = ladj_inner``. With ``split = C // 2``
    this factors out half the channels at each scale (RealNVP's multi-scale architecture).
    """

    def __init__(self, inner: Transform, split: int):
        super().__init__()
        if not isinstance(inner, Transform):
            raise TypeError(f"inner: expected a cflib Transform, got {type(inner).__name__}")
        if not isinstance(split, int) or split < 1:
            raise ValueError(f"split: expected a positive integer, got {split!r}")
        self.inner, self.split = inner, split

    def _halves(self, x: Tensor, name: str) -> tuple[Tensor, Tensor]:
        x = check_tensor(x, name)
        if x.dim() < 2 or x.shape[1] <= self.split:
            raise ValueError(
                f"{name}: FactorOut(split={self.split}) needs more than {self.split} channels, "
                f"got shape {tuple(x.shape)}"
            )
        return x[:, : self.split], x[:, self.split :]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        kept, rest = self._halves(x, "x")
        rest, ladj = self.inner(rest)
        return torch.cat([kept, rest], dim=1), ladj

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        kept, rest = self._halves(y, "y")
        rest, ladj = self.inner.inverse(rest)
        return torch.cat([kept, rest], dim=1), ladj
