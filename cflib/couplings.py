r"""Coupling layers: split, keep one part, transform the other with parameters from the first.

For a mask that marks the unchanged part :math:`z_a` and the transformed part :math:`z_b`:

.. math::  y_a = z_a, \qquad y_b = \tau(z_b;\ \theta(z_a)), \qquad
           \log|\det J| = \sum_i \log\left|\frac{\partial \tau_i}{\partial z_{b,i}}\right|

The Jacobian is block lower-triangular (:math:`\partial y_a/\partial z_b = 0`), so its determinant
is the product of the diagonal of the elementwise map :math:`\tau`: an O(d) log-det. The conditioner
:math:`\theta` can be any network; the inverse is :math:`z_b = \tau^{-1}(y_b; \theta(y_a))`, since
:math:`y_a = z_a`.

A coupling works on vectors ``(batch, dim)`` and on images ``(batch, C, H, W)``. The mask decides how:

- vectors, mask ``(dim,)``: the conditioner maps ``(batch, |a| + context_dim) -> (batch, |b| * P)``;
- images, mask ``(C,)`` (channel split): conditioner ``(batch, |a|, H, W) -> (batch, |b| * P, H, W)``;
- images, mask ``(H, W)`` or ``(C, H, W)`` (checkerboard): the conditioner sees ``x * mask`` and maps
  ``(batch, C, H, W) -> (batch, C * P, H, W)``; only the unmasked pixels are transformed.

``P`` (``num_params``) is the number of parameters of :math:`\tau` per transformed element.

Vectors are handled in the "parameter-major" layout when the coupling's map has a form for it
(``transform_packed``, defined by the same class as ``transform``: the splines and the affine
coupling; a subclass that overrides only ``transform`` keeps its own map): the parameters arrive as
one ``(P, n_b * batch)`` tensor, a contiguous row per parameter, which the splines process fastest.
How the default ReLU conditioner writes that layout directly, and when hand-written autograd
functions stand in for plain torch code, is explained in :mod:`cflib.fast`; the results, and the
derivatives of every order, are the same either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cflib import fast
from cflib.conditioners import MLP, ResNet
from cflib.masks import channel_mask
from cflib.splines import (
    DEFAULT_MIN,
    _pl_spline,
    _rq_spline,
    piecewise_linear_spline,
    rational_quadratic_spline,
    split_spline_params,
)
from cflib.transforms import Transform
from cflib.validation import check_event

__all__ = [
    "SCALES",
    "AdditiveCoupling",
    "AffineCoupling",
    "Coupling",
    "PiecewiseLinearCoupling",
    "SplineCoupling",
]

Conditioner = nn.Module | Callable[[int, int], nn.Module]


def _event_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    shape = tuple(shape)
    if len(shape) not in (1, 3) or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise ValueError(
            f"shape: expected a dimension (int) or an image shape (C, H, W), got {shape!r}"
        )
    if len(shape) == 1 and shape[0] < 2:
        raise ValueError(f"shape: a coupling needs at least 2 dimensions, got dim={shape[0]}")
    return shape


def _as_bool_mask(mask: object) -> Tensor:
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask: expected a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("mask: expected a boolean tensor (or one holding only 0 and 1)")
        mask = mask != 0
    return mask.detach().cpu()


def _has_packed_form(cls: type) -> bool:
    """Whether ``cls`` defines ``transform_packed`` in the same class as ``transform`` (so a
    subclass that overrides only ``transform`` is not bypassed by an inherited packed form)."""

    def owner(name: str) -> type:
        return next(c for c in cls.__mro__ if name in c.__dict__)

    return owner("transform") is owner("transform_packed") is not Coupling


class Coupling(Transform):
    """Base class: the split, the conditioner and the log-det bookkeeping.

    Subclasses set ``num_params`` and implement :meth:`transform` (the elementwise map
    :math:`\\tau` and its elementwise log-derivative).

    Args:
        shape: ``dim`` for vectors or ``(C, H, W)`` for images.
        mask: boolean mask, ``True`` = unchanged (see the module docstring for accepted shapes).
            Defaults to :func:`~cflib.masks.channel_mask` over the first axis.
        flip: complement the mask (also the default one): which half is transformed.
        conditioner: an ``nn.Module`` with the shapes above, or a factory
            ``(in_features, out_features) -> nn.Module``. Default: :class:`~cflib.conditioners.MLP`
            for vectors, :class:`~cflib.conditioners.ResNet` for images, zero-initialised.
        hidden_dim, num_hidden: size of the default conditioner.
        context_dim: size of an extra context vector the conditioner sees (vectors only).
    """

    num_params: int = 1

    def __init__(
        self,
        shape: int | Sequence[int],
        mask: Tensor | None = None,
        flip: bool = False,
        conditioner: Conditioner | None = None,
        hidden_dim: int = 64,
        num_hidden: int = 2,
        context_dim: int = 0,
    ):
        super().__init__()
        self.event_shape = _event_shape(shape)
        image = len(self.event_shape) == 3
        mask = channel_mask(self.event_shape[0]) if mask is None else _as_bool_mask(mask)
        if flip:
            mask = ~mask
        if image:
            c, h, w = self.event_shape
            allowed = {(c,): "channel", (h, w): "spatial", (c, h, w): "spatial"}
        else:
            allowed = {self.event_shape: "vector"}
        self.mode = allowed.get(tuple(mask.shape))
        if self.mode is None:
            raise ValueError(
                f"mask: shape {tuple(mask.shape)} does not fit inputs of shape "
                f"{self.event_shape}; expected one of {sorted(allowed)}"
            )
        if bool(mask.all()) or not bool(mask.any()):
            raise ValueError(
                "mask: must mark some elements unchanged (True) and some transformed (False), "
                f"got all {'True' if bool(mask.all()) else 'False'}"
            )
        if context_dim and self.mode != "vector":
            raise ValueError("context_dim: a context is supported for vector inputs only")
        self.register_buffer("mask", mask)
        self._packed = _has_packed_form(type(self))
        self.context_dim = context_dim
        p = self.num_params
        if self.mode == "spatial":
            self.register_buffer(
                "_keep", mask.expand(self.event_shape[-2:]) if mask.dim() == 2 else mask
            )
            sizes = (self.event_shape[0], self.event_shape[0] * p)
        else:
            idx_a, idx_b = mask.nonzero().flatten(), (~mask).nonzero().flatten()
            self.register_buffer("idx_a", idx_a)
            self.register_buffer("idx_b", idx_b)
            # gathering then concatenating [a, b] puts elements in this order; undo it with argsort
            self.register_buffer("order", torch.argsort(torch.cat([idx_a, idx_b])))
            self._halves = bool((self.order == torch.arange(len(mask))).all())
            sizes = (len(idx_a) + context_dim, len(idx_b) * p)
        self.conditioner = self._build_conditioner(
            conditioner, *sizes, image, hidden_dim, num_hidden
        )

    @property
    def is_conditional(self) -> bool:
        """Whether the conditioner also sees a context vector (``context_dim > 0``)."""
        return self.context_dim > 0

    @staticmethod
    def _build_conditioner(
        conditioner: Conditioner | None,
        n_in: int,
        n_out: int,
        image: bool,
        hidden_dim: int,
        num_hidden: int,
    ) -> nn.Module:
        if isinstance(conditioner, nn.Module):
            return conditioner
        if conditioner is None:
            if image:
                return ResNet(n_in, n_out, hidden_channels=hidden_dim, num_blocks=num_hidden)
            return MLP(n_in, n_out, hidden=(hidden_dim,) * num_hidden)
        if callable(conditioner):
            net = conditioner(n_in, n_out)
            if not isinstance(net, nn.Module):
                raise TypeError(
                    f"conditioner: the factory returned {type(net).__name__}, not an nn.Module"
                )
            return net
        raise TypeError(
            f"conditioner: expected an nn.Module or a factory, got {type(conditioner).__name__}"
        )

    def transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        """Elementwise map. ``x``: (...), ``params``: (..., P) -> ``(y, ladj)``, both (...)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement transform")

    def transform_packed(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        """Parameter-major :meth:`transform`: ``x`` (M,), ``params`` (P, M) -> ``(y, ladj)``, (M,).

        Optional: a coupling calls it only when the class that defines ``transform`` defines it
        too (see the module docstring); otherwise :meth:`transform` is used."""
        raise NotImplementedError(f"{type(self).__name__} does not implement transform_packed")

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(x, context, inverse=False)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(y, context, inverse=True)

    def _params(self, h: Tensor, shape: tuple[int, ...]) -> Tensor:
        expected = (h.shape[0], shape[1] * self.num_params, *shape[2:])
        if tuple(h.shape) != expected:
            raise ValueError(
                f"conditioner: returned shape {tuple(h.shape)}, expected {expected} "
                f"({self.num_params} parameter(s) per transformed element)"
            )
        h = h.unflatten(1, (shape[1], self.num_params))  # (B, n_b, P, *spatial)
        return h if h.dim() == 3 else h.movedim(2, -1)  # (B, n_b, [H, W,] P)

    def _couple(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        name = "y" if inverse else "x"
        check_event(x, self.event_shape, name, finite=self._check_values())
        if self.mode == "spatial":
            keep = self._keep
            h = self.conditioner(x * keep)
            params = self._params(h, tuple(x.shape)).to(x.dtype)
            z, ladj = self.transform(x, params, inverse)
            y = torch.where(keep, x, z)
            return y, ladj.masked_fill(keep, 0).flatten(1).sum(1)
        xa, xb = self._split(x)
        cond = self._conditioner_input(xa, context, name)
        if self._packed and self.mode == "vector":
            rows, ladj = self._couple_packed(cond, xb, inverse)
            y = fast.cat_rows(xa, rows)  # torch.cat([xa, rows.T], dim=1)
        else:
            params = self._params(self.conditioner(cond), tuple(xb.shape)).to(x.dtype)
            yb, ladj = self.transform(xb, params, inverse)
            y = torch.cat([xa, yb], dim=1)
            ladj = ladj.flatten(1).sum(1)
        if not self._halves:
            y = y.index_select(1, self.order)
        return y, ladj

    def _conditioner_input(self, xa: Tensor, context: Tensor | None, name: str) -> Tensor:
        """What the conditioner sees: the unchanged part, and the context if there is one."""
        if not self.context_dim:
            # A contiguous copy (a slice of x is strided): the conditioner's weight gradient, a
            # matrix product with this input, is then several times faster; the copy costs little.
            return xa.contiguous()
        if context is None:
            raise ValueError(
                f"context: this coupling needs a context of shape (batch, {self.context_dim})"
            )
        check_event(context, (self.context_dim,), "context", finite=False)
        if context.shape[0] != xa.shape[0]:
            raise ValueError(
                f"context: batch size {context.shape[0]} differs from {name}'s {xa.shape[0]}"
            )
        return torch.cat([xa, context.to(xa.dtype)], dim=1)

    def _couple_packed(self, cond: Tensor, xb: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        """The vector map in parameter-major layout: parameters (P, n_b * batch), column
        ``j * batch + i`` for transformed dimension ``j`` of sample ``i`` (see :mod:`cflib.fast`).
        Returns the transformed part as rows (n_b, batch) and the log-det (batch,)."""
        batch, n_b = xb.shape
        p = self.num_params
        params = fast.relu_mlp_packed(self.conditioner, cond, n_b, p)
        if params is None:
            params = self._params(self.conditioner(cond), (batch, n_b))  # (batch, n_b, P), checked
            params = params.permute(2, 1, 0).reshape(p, n_b * batch).contiguous()
        # (under autocast the conditioner computes in lower precision; the map in x's dtype)
        y, ladj = self.transform_packed(xb.T.reshape(-1), params.to(xb.dtype), inverse)
        return y.view(n_b, batch), (ladj if n_b == 1 else ladj.view(n_b, batch).sum(0))

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self._halves:  # mask = [True]*k + [False]*(n-k): slicing is free
            k = len(self.idx_a)
            return x[:, :k], x[:, k:]
        return x.index_select(1, self.idx_a), x.index_select(1, self.idx_b)

    def extra_repr(self) -> str:
        return f"shape={self.event_shape}, mode={self.mode}, transformed={int((~self.mask).sum())}"


class AdditiveCoupling(Coupling):
    r"""NICE: :math:`y_b = z_b + t(z_a)`; :math:`\log|\det J| = 0` (volume preserving)."""

    num_params = 1

    def transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        t = params[..., 0]
        return (x - t if inverse else x + t), torch.zeros_like(x)


def _log_scale_softplus(raw: Tensor, eps: float = 1e-3) -> Tensor:
    # scale = eps + softplus(raw + b), with b chosen so that raw = 0 gives scale = 1 exactly
    b = math.log(math.expm1(1.0 - eps))
    return torch.log(eps + F.softplus(raw + b))


def _log_scale_sigmoid(raw: Tensor) -> Tensor:
    # Glow: scale = sigmoid(raw + 2), divided by sigmoid(2) so that raw = 0 is the identity;
    # the scale lies in (0, 1.135): a layer can contract strongly but barely expand
    return F.logsigmoid(raw + 2.0) - F.logsigmoid(torch.tensor(2.0, dtype=raw.dtype))


#: Scale parameterisations, each mapping the raw conditioner output to the log-scale s, with s(0) = 0.
SCALES: dict[str, Callable[[Tensor, float], Tensor]] = {
    "exp": lambda raw, c: raw,
    "tanh": lambda raw, c: c * torch.tanh(raw / c),
    "clamp": lambda raw, c: raw.clamp(-c, c),
    "softplus": lambda raw, c: _log_scale_softplus(raw),
    "sigmoid": lambda raw, c: _log_scale_sigmoid(raw),
}


class AffineCoupling(Coupling):
    r"""RealNVP: :math:`y_b = z_b \odot e^{s(z_a)} + t(z_a)`; :math:`\log|\det J| = \sum_i s_i`.

    Inverse: :math:`z_b = (y_b - t(y_a)) \odot e^{-s(y_a)}`. The log-scale ``s`` comes from the raw
    conditioner output through ``scale`` (see :data:`SCALES`):

    - ``"exp"``: :math:`s = r` (unbounded; can overflow when training goes badly);
    - ``"tanh"``: :math:`s = c \tanh(r / c)`, bounded in :math:`(-c, c)` (``scale_bound = c``);
    - ``"clamp"``: :math:`s = \mathrm{clamp}(r, -c, c)` (zero gradient outside);
    - ``"softplus"``: :math:`e^{s} = \epsilon + \mathrm{softplus}(r + b)`, positive, grows linearly;
    - ``"sigmoid"``: Glow's :math:`e^{s} = \sigma(r + 2) / \sigma(2)`, at most 1.135.

    Every choice gives :math:`s(0) = 0`, so a zero-initialised conditioner starts at the identity.
    """

    num_params = 2

    def __init__(self, *args, scale: str = "exp", scale_bound: float = 2.0, **kwargs):
        if scale not in SCALES:
            raise ValueError(f"scale: expected one of {sorted(SCALES)}, got {scale!r}")
        if not (math.isfinite(scale_bound) and scale_bound > 0):
            raise ValueError(f"scale_bound: expected a positive number, got {scale_bound}")
        super().__init__(*args, **kwargs)
        self.scale, self.scale_bound = scale, float(scale_bound)

    def transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        return self._affine(x, params[..., 0], params[..., 1], inverse)

    def transform_packed(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        raw, t = params.unbind(0)  # two contiguous rows: one backward node, no zero-filled grads
        return self._affine(x, raw, t, inverse)

    def _affine(self, x: Tensor, raw: Tensor, t: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        s = SCALES[self.scale](raw, self.scale_bound)
        if inverse:
            return (x - t) * torch.exp(-s), -s
        return torch.addcmul(t, x, torch.exp(s)), s  # x e^s + t


class SplineCoupling(Coupling):
    r"""Neural Spline Flow: :math:`\tau` is a monotone rational-quadratic spline with ``num_bins``
    bins on ``[-bound, bound]`` and identity tails; ``3 K - 1`` parameters per element.

    See :func:`cflib.splines.rational_quadratic_spline` for the map, its log-derivative and the
    closed-form inverse.
    """

    def __init__(self, *args, num_bins: int = 8, bound: float = 3.0, **kwargs):
        if not isinstance(num_bins, int) or num_bins < 2:
            raise ValueError(f"num_bins: expected an integer >= 2, got {num_bins!r}")
        self.num_params = 3 * num_bins - 1
        super().__init__(*args, **kwargs)
        self.num_bins, self.bound = num_bins, float(bound)

    def transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        w, h, d = split_spline_params(params, self.num_bins)
        return rational_quadratic_spline(x, w, h, d, inverse=inverse, bound=self.bound)

    def transform_packed(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        m, k = DEFAULT_MIN, self.num_bins  # the smallest bin width, bin height and slope
        # One split (not three slices): its backward assembles the parameters' gradient in one piece.
        return _rq_spline(x, *params.split([k, k, k - 1]), inverse, self.bound, m, m, m)


class PiecewiseLinearCoupling(Coupling):
    r"""Neural Importance Sampling: :math:`\tau` is a monotone piecewise-linear map with
    ``num_bins`` equal-width bins on ``[-bound, bound]`` (bin heights from a softmax) and identity
    tails; ``K`` parameters per element. Fast and expressive, but its derivative jumps at the knots.
    """

    def __init__(self, *args, num_bins: int = 8, bound: float = 3.0, **kwargs):
        if not isinstance(num_bins, int) or num_bins < 2:
            raise ValueError(f"num_bins: expected an integer >= 2, got {num_bins!r}")
        self.num_params = num_bins
        super().__init__(*args, **kwargs)
        self.num_bins, self.bound = num_bins, float(bound)

    def transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        return piecewise_linear_spline(x, params, inverse=inverse, bound=self.bound)

    def transform_packed(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        return _pl_spline(x, params, inverse, self.bound, DEFAULT_MIN)
