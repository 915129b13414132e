r"""Permutations between couplings, so that every dimension is transformed and all interact.

A fixed permutation has :math:`|\det P| = 1` (log-det 0). Glow's invertible 1x1 convolution is a
learned mixing matrix :math:`W = P L (U + \mathrm{diag}(\mathrm{sign}(s)\, e^{\log|s|}))` whose
log-det :math:`\sum_i \log|s_i|` (times ``H * W`` for images) costs O(C).

All act on axis 1: the features of ``(batch, dim)`` or the channels of ``(batch, C, H, W)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cflib.transforms import Transform
from cflib.validation import check_finite, check_tensor

__all__ = ["InvertibleConv1x1", "Permutation", "RandomPermutation", "ReversePermutation"]


def _check_axis1(x: object, size: int, name: str, finite: bool) -> Tensor:
    x = check_tensor(x, name)
    if x.dim() not in (2, 4):
        raise ValueError(
            f"{name}: expected shape (batch, {size}) or (batch, {size}, H, W), got {tuple(x.shape)}"
        )
    if x.shape[1] != size:
        raise ValueError(
            f"{name}: expected {size} features/channels on axis 1, got shape {tuple(x.shape)}"
        )
    return check_finite(x, name) if finite else x


class Permutation(Transform):
    """A fixed permutation of axis 1: ``y[:, i] = x[:, perm[i]]``; log-det 0 both ways."""

    def __init__(self, perm: Tensor):
        super().__init__()
        perm = torch.as_tensor(perm, dtype=torch.long)
        if perm.dim() != 1 or not torch.equal(perm.sort().values, torch.arange(len(perm))):
            raise ValueError(f"perm: expected a permutation of 0..n-1, got {perm.tolist()}")
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", torch.argsort(perm))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = _check_axis1(x, len(self.perm), "x", self._check_values())
        return x.index_select(1, self.perm), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y = _check_axis1(y, len(self.perm), "y", self._check_values())
        return y.index_select(1, self.inverse_perm), y.new_zeros(y.shape[0])


class ReversePermutation(Permutation):
    """Reverse the order of axis 1 (NICE); its own inverse."""

    def __init__(self, dim: int):
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim: expected a positive integer, got {dim!r}")
        super().__init__(torch.arange(dim - 1, -1, -1))


class RandomPermutation(Permutation):
    """A fixed random shuffle of axis 1 (RealNVP), reproducible from ``seed``."""

    def __init__(self, dim: int, seed: int = 0):
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim: expected a positive integer, got {dim!r}")
        super().__init__(torch.randperm(dim, generator=torch.Generator().manual_seed(seed)))


class InvertibleConv1x1(Transform):
    r"""Glow's learned invertible 1x1 convolution, LU-parameterised.

    :math:`W = P\,L\,(U + \mathrm{diag}(\mathrm{sign}\, e^{\log|s|}))` with fixed permutation
    :math:`P`, unit lower-triangular :math:`L` and strictly upper-triangular :math:`U`.
    ``y[:, i] = sum_j W[i, j] x[:, j]`` at every pixel; ``ladj = H * W * sum(log|s|)``
    (``H * W = 1`` for vectors). Initialised at a random rotation (``seed``).
    """

    def __init__(self, channels: int, seed: int = 0):
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels: expected a positive integer, got {channels!r}")
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=g, dtype=torch.float64))
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("p", p.float())
        self.register_buffer("sign", torch.sign(s).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower.float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(s.abs().log().float())
        self.channels = channels

    def weight(self) -> Tensor:
        """The matrix ``W``, shape ``(channels, channels)``."""
        eye = torch.eye(self.channels, dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * self.log_s.exp())
        return self.p @ lower @ upper

    def _pixels(self, x: Tensor) -> int:
        return 1 if x.dim() == 2 else x.shape[2] * x.shape[3]

    def _mix(self, x: Tensor, w: Tensor) -> Tensor:
        w = w.to(x.dtype)
        return x @ w.T if x.dim() == 2 else torch.einsum("ij,bjhw->bihw", w, x)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = _check_axis1(x, self.channels, "x", self._check_values())
        ladj = self.log_s.sum().to(x.dtype) * self._pixels(x)
        return self._mix(x, self.weight()), ladj.expand(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y = _check_axis1(y, self.channels, "y", self._check_values())
        ladj = -self.log_s.sum().to(y.dtype) * self._pixels(y)
        return self._mix(y, torch.linalg.inv(self.weight())), ladj.expand(y.shape[0])
