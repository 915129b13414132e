r"""Data preprocessing for flows on discrete data: uniform dequantisation and the logit transform.

Pixels take ``L`` integer values ``k in {0, ..., L-1}``. A flow is a *continuous* density, so the
data are first dequantised, ``x = (k + u) / L`` with ``u ~ U[0, 1)^D`` (:func:`dequantize`); the
flow's density ``q(x)`` then bounds the discrete log-likelihood from below (Theis et al., 2016):

.. math::  \log P(k) \ge \mathbb E_u[\log q((k + u) / L)] - D \log L .

:class:`Logit` maps the unit cube to the whole space, as RealNVP does before its couplings,
:math:`y = \mathrm{logit}(\alpha + (1 - 2\alpha) x)`; it is a cflib ``Transform``, so its exact
log-det enters the likelihood (and the bits per dimension) like that of any other layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from cflib.transforms import Transform
from cflib.validation import check_finite, check_tensor

__all__ = ["Logit", "dequantize"]


def _check_batch(x: object, name: str) -> Tensor:
    x = check_finite(check_tensor(x, name), name)
    if x.dim() < 2:
        raise ValueError(f"{name}: expected a batch of shape (batch, ...), got {tuple(x.shape)}")
    return x


class Logit(Transform):
    r"""``y = logit(p)`` with ``p = alpha + (1 - 2 alpha) x``: the unit cube to the whole space.

    ``x``: ``(batch, ...)``, entries in the open interval :attr:`domain`, which contains
    ``[0, 1]`` (it is the image of the whole line under the inverse); ``y`` has the same shape.
    ``ladj = sum_i [log(1 - 2 alpha) - log p_i - log(1 - p_i)]``, shape ``(batch,)``.
    The inverse is ``x = (sigmoid(y) - alpha) / (1 - 2 alpha)`` with
    ``ladj = sum_i [log sigmoid(y_i) + log sigmoid(-y_i) - log(1 - 2 alpha)]``.
    ``alpha`` keeps ``x = 0`` and ``x = 1`` away from the infinite ends of the logit. A density on
    ``y`` pushed through the inverse lives on :attr:`domain`, so part of its mass may fall just
    outside ``[0, 1]`` (e.g. ``2 Phi(logit(alpha))`` for a standard normal ``y``).
    """

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        alpha = float(alpha)
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"alpha: expected a number in (0, 0.5), got {alpha}")
        self.alpha = alpha

    @property
    def domain(self) -> tuple[float, float]:
        """The open interval ``(-alpha, 1 - alpha) / (1 - 2 alpha)`` mapped onto the whole line."""
        a = self.alpha
        return -a / (1.0 - 2.0 * a), (1.0 - a) / (1.0 - 2.0 * a)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = _check_batch(x, "x")
        p = self.alpha + (1.0 - 2.0 * self.alpha) * x
        if bool(((p <= 0) | (p >= 1)).any()):
            lo, hi = self.domain
            raise ValueError(
                f"x: expected values in ({lo:.4g}, {hi:.4g}) (alpha={self.alpha}), "
                f"got values in [{float(x.min()):.4g}, {float(x.max()):.4g}]"
            )
        log_p, log_q = torch.log(p), torch.log1p(-p)
        ladj = (math.log1p(-2.0 * self.alpha) - log_p - log_q).flatten(1).sum(1)
        return log_p - log_q, ladj

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y = _check_batch(y, "y")
        x = (torch.sigmoid(y) - self.alpha) / (1.0 - 2.0 * self.alpha)
        ladj = F.logsigmoid(y) + F.logsigmoid(-y) - math.log1p(-2.0 * self.alpha)
        return x, ladj.flatten(1).sum(1)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


def dequantize(
    x: Tensor,
    num_levels: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    r"""Uniform dequantisation ``(k + u) / L`` of integer levels ``k in {0, ..., L-1}``.

    ``x``: a tensor of any shape holding integer values (integer or floating dtype); ``u`` is
    drawn from ``U[0, 1)`` with ``generator`` (on the CPU, so a seed gives the same noise on any
    device). Returns values in ``[0, 1)`` (``[0, 1]`` after rounding to ``dtype``) of ``x``'s shape, on its device, as ``dtype`` (default:
    ``x``'s dtype if floating, else torch's default dtype).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if not isinstance(num_levels, int) or isinstance(num_levels, bool) or num_levels < 2:
        raise ValueError(f"num_levels: expected an int >= 2, got {num_levels!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator: expected a torch.Generator or None, got {type(generator).__name__}"
        )
    if dtype is None:
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    elif not dtype.is_floating_point:
        raise TypeError(f"dtype: expected a floating-point dtype, got {dtype}")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"x: expected integer levels (integer or float dtype), got {x.dtype}")
    if x.is_floating_point():
        check_finite(x, "x")
        if bool((x != torch.round(x)).any()):
            raise ValueError("x: expected integer levels, got non-integer values")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) > num_levels - 1):
        raise ValueError(
            f"x: expected levels in [0, {num_levels - 1}] (num_levels={num_levels}), "
            f"got values in [{int(x.min())}, {int(x.max())}]"
        )
    u = torch.rand(x.shape, generator=generator, dtype=dtype).to(x.device)
    return (x.to(dtype) + u) / num_levels
