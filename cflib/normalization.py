r"""A learned elementwise scale and shift: NICE's diagonal scaling and Glow's actnorm.

.. math::  y = x \odot e^{s} + b, \qquad \log\left|\det \frac{\partial y}{\partial x}\right|
           = \sum_i s_i ,

with ``s`` and ``b`` of a ``shape`` that broadcasts over one sample: ``(dim,)`` for vectors,
``(C, H, W)`` for one scale per pixel (NICE's diagonal scaling layer) or ``(C, 1, 1)`` for one
per channel (Glow's actnorm). A flow built only from additive couplings and permutations has
``|det J| = 1`` everywhere (it is volume preserving), so it cannot make the density higher in one
place without moving mass; this layer is the cheapest way to give it a learned volume change.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cflib.transforms import Transform
from cflib.validation import check_finite, check_tensor

__all__ = ["ActNorm"]


class ActNorm(Transform):
    r"""``y = x * exp(log_scale) + shift``, both learned, of shape ``shape`` broadcast per sample.

    ``forward(x) -> (y, ladj)`` with ``ladj = sum(log_scale)`` over the broadcast event (e.g.
    ``H * W * sum(log_scale)`` for a per-channel ``(C, 1, 1)`` shape), the same for every sample;
    ``inverse(y) -> ((y - shift) * exp(-log_scale), -ladj)``. Starts as the identity.

    With cflib's convention (``forward`` = base to data), :meth:`initialize` sets the parameters
    from data so that ``inverse(data)`` has zero mean and unit variance per parameter entry: a
    flow whose other layers are the identity then starts as the diagonal Gaussian fit.

    Args:
        shape: parameter shape, e.g. ``(dim,)``, ``(C, H, W)`` or ``(C, 1, 1)``.
    """

    def __init__(self, shape: int | Sequence[int]):
        super().__init__()
        shape = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else shape
        shape = tuple(shape)
        if not shape or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape
        ):
            raise ValueError(f"shape: expected positive integers, e.g. (C, H, W), got {shape!r}")
        self.log_scale = nn.Parameter(torch.zeros(shape))
        self.shift = nn.Parameter(torch.zeros(shape))

    def _check(self, x: object, name: str) -> Tensor:
        x = check_tensor(x, name)
        if self._check_values():
            check_finite(x, name)
        shape = tuple(self.log_scale.shape)
        event = tuple(x.shape[1:])
        if len(event) != len(shape) or any(
            s not in (1, e) for s, e in zip(shape, event, strict=True)
        ):
            raise ValueError(
                f"{name}: expected shape (batch, ...) whose sample shape matches {shape} "
                f"(entries 1 broadcast), got {tuple(x.shape)}"
            )
        return x

    def _ladj(self, x: Tensor) -> Tensor:
        total = self.log_scale.expand(x.shape[1:]).sum()
        return total.to(x.dtype).expand(x.shape[0])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self._check(x, "x")
        y = x * self.log_scale.exp().to(x.dtype) + self.shift.to(x.dtype)
        return y, self._ladj(x)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y = self._check(y, "y")
        x = (y - self.shift.to(y.dtype)) * torch.exp(-self.log_scale).to(y.dtype)
        return x, -self._ladj(y)

    @torch.no_grad()
    def initialize(self, data: Tensor) -> ActNorm:
        """Set ``shift`` and ``log_scale`` to the mean and log standard deviation of ``data``
        (``(N, ...)``, over the samples and the broadcast axes), so ``inverse(data)`` is
        standardised. Returns ``self``. Raises ``ValueError`` for a constant entry."""
        data = self._check(data, "data")
        if len(data) < 2:
            raise ValueError(f"data: expected at least 2 samples, got {len(data)}")
        axes = [0] + [i + 1 for i, s in enumerate(self.log_scale.shape) if s == 1]
        mean = data.mean(axes, keepdim=True)[0]
        std = data.std(axes, keepdim=True, correction=0)[0]
        if bool((std == 0).any()):
            raise ValueError("data: some entries are constant (zero variance); cannot scale them")
        self.shift.copy_(mean.to(self.shift))
        self.log_scale.copy_(std.log().to(self.log_scale))
        return self

    def extra_repr(self) -> str:
        return f"shape={tuple(self.log_scale.shape)}"
