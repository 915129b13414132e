r"""Masked autoregressive transform (MAF/IAF, with a MADE conditioner), for comparison.

.. math::  y_i = x_i\, e^{s_i(x_{<i})} + t_i(x_{<i}), \qquad \log|\det J| = \sum_i s_i

The Jacobian is triangular as for a coupling, so the log-det is O(d) too. The difference is the
inverse: :math:`x_i = (y_i - t_i(x_{<i}))\, e^{-s_i(x_{<i})}` needs :math:`x_{<i}` first, so it
takes ``dim`` sequential passes of the network, where a coupling needs one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cflib.couplings import SCALES
from cflib.transforms import Transform
from cflib.validation import check_event

__all__ = ["MADE", "MaskedAutoregressive"]


class _MaskedLinear(nn.Linear):
    def __init__(self, in_features: int, out_features: int, mask: Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Masked autoencoder (Germain et al. 2015): ``(batch, dim) -> (batch, dim, num_params)``.

    Output ``[:, i, :]`` depends on inputs ``x_j`` with ``j < i`` only (degrees 1..dim on inputs,
    cyclic degrees in 1..dim-1 on hidden units). The last layer is zero-initialised.
    """

    def __init__(self, dim: int, num_params: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        if dim < 2:
            raise ValueError(f"dim: an autoregressive transform needs dim >= 2, got {dim}")
        degrees = [torch.arange(1, dim + 1)]
        degrees += [torch.arange(h) % (dim - 1) + 1 for h in hidden]
        layers: list[nn.Module] = []
        for d_in, d_out in itertools.pairwise(degrees):
            layers += [
                _MaskedLinear(len(d_in), len(d_out), d_out[:, None] >= d_in[None, :]),
                nn.ReLU(),
            ]
        out_degrees = torch.arange(1, dim + 1).repeat_interleave(num_params)
        last = _MaskedLinear(
            len(degrees[-1]), dim * num_params, out_degrees[:, None] > degrees[-1][None, :]
        )
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)
        self.dim, self.num_params = dim, num_params

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).unflatten(1, (self.dim, self.num_params))


class MaskedAutoregressive(Transform):
    """Affine autoregressive transform: forward in one pass, inverse in ``dim`` passes.

    Used with :class:`~cflib.transforms.Inverse` it is MAF (one-pass density, sequential sampling);
    used directly it is IAF (one-pass sampling, sequential density).
    """

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (64, 64),
        scale: str = "tanh",
        scale_bound: float = 2.0,
    ):
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale: expected one of {sorted(SCALES)}, got {scale!r}")
        self.made = MADE(dim, 2, hidden)
        self.dim, self.scale, self.scale_bound = dim, scale, scale_bound

    def _st(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.made(x)
        return SCALES[self.scale](h[..., 0], self.scale_bound), h[..., 1]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_event(x, (self.dim,), "x", finite=self._check_values())
        s, t = self._st(x)
        return x * torch.exp(s) + t, s.sum(1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_event(y, (self.dim,), "y", finite=self._check_values())
        x = torch.zeros_like(y)
        ladj = y.new_zeros(y.shape[0])
        for i in range(self.dim):  # x_i needs x_{<i}: one network pass per dimension
            s, t = self._st(x)
            xi = (y[:, i] - t[:, i]) * torch.exp(-s[:, i])
            x = torch.cat([x[:, :i], xi[:, None], x[:, i + 1 :]], dim=1)
            ladj = ladj - s[:, i]
        return x, ladj
