r"""Preprocessing for tabular data: invertible layers with exact log-dets (standardisation,
whitening, log transform), and dequantisation of values recorded at a finite resolution.

A flow fitted to standardised data ``u = (x - mu) / sigma`` has a density in ``u``; the density of
the original ``x`` follows from the change of variables,

.. math::  \log p_x(x) = \log p_u\big((x - \mu)/\sigma\big) - \sum_j \log \sigma_j ,

a constant shift for every model fitted in the same standardised space. :class:`Standardize`,
:class:`Whiten` (full covariance: a standard normal pulled back through it is the Gaussian fit)
and :class:`Log` (positive, skewed columns) are cflib ``Transform`` layers in the data-to-model
direction, so composing them with a flow gives the density in the original units exactly.

Measured values are rounded: a column recorded to ``delta`` (e.g. two decimals, ``delta = 0.01``)
holds ``round(x / delta) * delta``, the true value lies within ``delta / 2`` of it, and many rows
share a value. A continuous density can put a spike on a repeated value and reach an unbounded
likelihood. :func:`dequantize_rounded` spreads each value uniformly over its rounding cell,
``x + (v - 1/2) delta`` with ``v ~ U[0, 1)``; then ``E_v[log q(x + (v - 1/2) delta)] + sum_j log
delta_j`` is a lower bound on the log-probability of the recorded (rounded) row (Jensen's
inequality, as for pixels: Theis et al., 2016). :func:`decimal_resolution` finds ``delta`` per
column from the number of decimals the data were written with.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cflib.transforms import Transform
from cflib.validation import check_event, check_finite, check_tensor

__all__ = ["Log", "Standardize", "Whiten", "decimal_resolution", "dequantize_rounded"]


def _check_table(x: object, name: str) -> Tensor:
    x = check_finite(check_tensor(x, name), name)
    if x.dim() != 2 or len(x) == 0:
        raise ValueError(
            f"{name}: expected a non-empty table of shape (N, dim), got {tuple(x.shape)}"
        )
    return x


def _check_columns(v: object, dim: int, name: str) -> Tensor:
    v = check_finite(check_tensor(v, name), name)
    if v.shape != (dim,):
        raise ValueError(f"{name}: expected shape ({dim},), got {tuple(v.shape)}")
    if bool((v <= 0).any()):
        raise ValueError(f"{name}: expected positive values, got minimum {float(v.min()):.4g}")
    return v


class Standardize(Transform):
    r"""``u = (x - mean) / std`` per column: data to standardised coordinates.

    ``x``: ``(batch, dim)``. ``forward`` returns ``(u, ladj)`` with the constant
    ``ladj = -sum_j log std_j``, shape ``(batch,)``; ``inverse`` returns ``x = mean + std * u``
    and ``+sum_j log std_j``. ``mean`` and ``std`` (shape ``(dim,)``) are buffers, so they follow
    ``.to(...)`` and are saved with the model. Fit them on the *training* split only
    (:meth:`fit`), so validation and test rows are transformed with the same map.
    """

    def __init__(self, mean: Tensor, std: Tensor):
        super().__init__()
        mean = check_finite(check_tensor(mean, "mean"), "mean")
        if mean.dim() != 1:
            raise ValueError(f"mean: expected shape (dim,), got {tuple(mean.shape)}")
        std = _check_columns(std, len(mean), "std").to(mean.dtype)
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    @classmethod
    def fit(cls, x: Tensor) -> Standardize:
        """The standardisation of ``x`` (N, dim): column means and (population) standard
        deviations; raises ``ValueError`` for a constant column, which has no density."""
        x = _check_table(x, "x")
        std = x.std(0, correction=0)
        if bool((std == 0).any()):
            cols = torch.nonzero(std == 0).flatten().tolist()
            raise ValueError(f"x: columns {cols} are constant; drop them before standardising")
        return cls(x.mean(0), std)

    @property
    def dim(self) -> int:
        return len(self.mean)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = check_event(x, (self.dim,), "x", finite=False)
        ladj = -torch.log(self.std).sum().to(x.dtype).expand(len(x))
        return (x - self.mean.to(x)) / self.std.to(x), ladj

    def inverse(self, u: Tensor) -> tuple[Tensor, Tensor]:
        u = check_event(u, (self.dim,), "u", finite=False)
        ladj = torch.log(self.std).sum().to(u.dtype).expand(len(u))
        return self.mean.to(u) + self.std.to(u) * u, ladj

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Whiten(Transform):
    r"""``u = L^{-1} (x - mean)`` with ``cov = L L^T`` (Cholesky): data to whitened coordinates.

    If ``x ~ N(mean, cov)`` then ``u ~ N(0, I)``: a flow whose base is the standard normal and
    whose layers start as the identity is, composed with this map, exactly the Gaussian with
    this mean and covariance. ``x``: ``(batch, dim)``; ``forward`` returns ``(u, ladj)`` with the
    constant ``ladj = -sum_j log L_jj = -(1/2) log det cov``; ``inverse`` returns
    ``x = mean + L u`` and ``+sum_j log L_jj``. Fit on the training split only (:meth:`fit`).
    """

    def __init__(self, mean: Tensor, cov: Tensor):
        super().__init__()
        mean = check_finite(check_tensor(mean, "mean"), "mean")
        if mean.dim() != 1:
            raise ValueError(f"mean: expected shape (dim,), got {tuple(mean.shape)}")
        cov = check_finite(check_tensor(cov, "cov"), "cov").to(mean.dtype)
        if cov.shape != (len(mean), len(mean)):
            raise ValueError(
                f"cov: expected shape ({len(mean)}, {len(mean)}), got {tuple(cov.shape)}"
            )
        chol, info = torch.linalg.cholesky_ex(cov)
        if int(info) != 0 or not torch.allclose(cov, cov.T):
            raise ValueError("cov: expected a symmetric positive-definite matrix")
        self.register_buffer("mean", mean.clone())
        self.register_buffer("chol", chol)

    @classmethod
    def fit(cls, x: Tensor) -> Whiten:
        """The whitening of ``x`` (N, dim): sample mean and maximum-likelihood covariance
        (divided by ``N``), so that composed with a standard normal it is the Gaussian MLE."""
        x = _check_table(x, "x")
        if len(x) <= x.shape[1]:
            raise ValueError(
                f"x: need more rows than columns for a full covariance, got {tuple(x.shape)}"
            )
        return cls(x.mean(0), torch.cov(x.T, correction=0))

    @property
    def dim(self) -> int:
        return len(self.mean)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = check_event(x, (self.dim,), "x", finite=False)
        chol = self.chol.to(x)
        u = torch.linalg.solve_triangular(chol, (x - self.mean.to(x)).T, upper=False).T
        return u, -torch.log(chol.diagonal()).sum().expand(len(x))

    def inverse(self, u: Tensor) -> tuple[Tensor, Tensor]:
        u = check_event(u, (self.dim,), "u", finite=False)
        chol = self.chol.to(u)
        return self.mean.to(u) + u @ chol.T, torch.log(chol.diagonal()).sum().expand(len(u))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Log(Transform):
    r"""``y = log x`` elementwise, for positive skewed columns: ``(0, inf)^dim`` to the whole space.

    ``x``: ``(batch, dim)``, all entries positive. ``forward`` returns ``(log x, ladj)`` with
    ``ladj = -sum_j log x_j`` (per row, shape ``(batch,)``); ``inverse`` returns ``exp(y)`` and
    ``+sum_j y_j``. A density ``p_y`` on the log scale is the density
    ``p_x(x) = p_y(log x) / prod_j x_j`` on the original scale.
    """

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = check_finite(check_tensor(x, "x"), "x")
        if x.dim() != 2:
            raise ValueError(f"x: expected shape (batch, dim), got {tuple(x.shape)}")
        if bool((x <= 0).any()):
            raise ValueError(f"x: expected positive values, got minimum {float(x.min()):.4g}")
        y = torch.log(x)
        return y, -y.sum(1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y = check_tensor(y, "y")
        if y.dim() != 2:
            raise ValueError(f"y: expected shape (batch, dim), got {tuple(y.shape)}")
        return torch.exp(y), y.sum(1)


def decimal_resolution(x: Tensor, max_decimals: int = 8) -> Tensor:
    """Per column, ``10**-k`` for the smallest ``k <= max_decimals`` such that every value is a
    multiple of ``10**-k`` (up to float64 round-off): the resolution the data were written with.

    ``x``: (N, dim) -> (dim,) in float64. Integer-valued columns get resolution 1. A column with
    more than ``max_decimals`` decimals raises ``ValueError`` (it is not rounded data).
    """
    x = _check_table(x, "x").to(torch.float64)
    if not isinstance(max_decimals, int) or isinstance(max_decimals, bool) or max_decimals < 0:
        raise ValueError(f"max_decimals: expected a non-negative int, got {max_decimals!r}")
    out = torch.empty(x.shape[1], dtype=torch.float64)
    for j in range(x.shape[1]):
        col = x[:, j]
        for k in range(max_decimals + 1):
            scaled = col * 10.0**k
            tol = 1e-6 * torch.clamp(scaled.abs(), min=1.0)
            if bool(((scaled - torch.round(scaled)).abs() <= tol).all()):
                out[j] = 10.0**-k
                break
        else:
            raise ValueError(
                f"x: column {j} has more than {max_decimals} decimals; it does not look rounded"
            )
    return out


def dequantize_rounded(
    x: Tensor, resolution: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    r"""Spread rounded values over their rounding cells: ``x + (v - 1/2) * resolution``.

    ``x``: (N, dim); ``resolution``: (dim,), positive (e.g. from :func:`decimal_resolution`);
    ``v ~ U[0, 1)^{N x dim}`` drawn on the CPU with ``generator`` (a seed gives the same noise on
    any device). Returns a tensor like ``x``. A density ``q`` fitted to such data bounds the
    log-probability of a recorded row from below: ``log P(row) >= E_v[log q] + sum_j log
    resolution_j``.
    """
    x = _check_table(x, "x")
    res = _check_columns(resolution, x.shape[1], "resolution")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator: expected a torch.Generator or None, got {type(generator).__name__}"
        )
    v = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return x + (v - 0.5) * res.to(x)
