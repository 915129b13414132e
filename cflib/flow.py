r"""Normalizing flows: a base distribution pushed through an invertible transform.

.. math::  x = f(z),\ z \sim \mathcal N(0, I), \qquad
           \log p(x) = \log \mathcal N(f^{-1}(x)) + \log\left|\det \frac{\partial f^{-1}}{\partial x}\right|

``forward`` is the generative direction (base to data), ``inverse`` the normalising one; each returns
its own log-det, and ``log_prob`` is a single inverse pass. A :class:`Flow` is both an
``nn.Module`` and a ``torch.distributions.Distribution``: ``expand`` (hence ``Independent``,
``MixtureSameFamily`` and Pyro's plates) and ``condition(context)`` give a
:class:`FlowDistribution` with a batch shape, and calling a flow with no input draws a
reparameterised sample, as a distribution's ``__call__`` does in Pyro (``pyro.sample("z", flow)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from cflib.autoregressive import MaskedAutoregressive
from cflib.conditioners import MLP, Attention
from cflib.couplings import (
    AdditiveCoupling,
    AffineCoupling,
    PiecewiseLinearCoupling,
    SplineCoupling,
)
from cflib.masks import channel_mask, checkerboard_mask
from cflib.permutations import InvertibleConv1x1, RandomPermutation, ReversePermutation
from cflib.reshape import FactorOut, Squeeze
from cflib.transforms import Compose, Inverse, Transform, contain
from cflib.validation import check_finite, check_like, check_tensor

__all__ = [
    "COUPLINGS",
    "AutoregressiveFlow",
    "CouplingFlow",
    "Flow",
    "FlowDistribution",
    "MultiScaleFlow",
]

COUPLINGS: dict[str, type] = {
    "additive": AdditiveCoupling,
    "affine": AffineCoupling,
    "spline": SplineCoupling,
    "piecewise_linear": PiecewiseLinearCoupling,
}


class Flow(Transform, Distribution):
    """A standard-normal base on ``event_shape`` pushed forward through ``transform``.

    Inputs are checked once per call, at the method the user called (``log_prob``, ``forward``,
    ``inverse``, ``sample``): shape, dtype and device always (they cost nothing), the values (NaN,
    infinity) when ``validate_args`` is on. Value checks never wait for an accelerator, and are
    skipped while ``torch.compile``/``torch.export`` trace and inside ``torch.func`` transforms.

    Args:
        transform: the generative map ``f`` (base to data), a cflib ``Transform``.
        event_shape: shape of one sample, e.g. ``(dim,)`` or ``(C, H, W)``.
        validate_args: check the input's values; ``None`` (default) follows
            ``torch.distributions.Distribution.set_default_validate_args``.
    """

    arg_constraints: ClassVar[dict] = {}
    has_rsample = True

    def __init__(
        self,
        transform: Transform,
        event_shape: Sequence[int],
        validate_args: bool | None = None,
    ):
        Transform.__init__(self)
        Distribution.__init__(
            self, torch.Size(), torch.Size(event_shape), validate_args=validate_args
        )
        if not isinstance(transform, Transform):
            raise TypeError(
                f"transform: expected a cflib Transform, got {type(transform).__name__}"
            )
        self.transform = transform
        contain(transform)  # the flow checks its input once; its layers trust it
        self.register_buffer("_anchor", torch.zeros(()))  # follows .to(dtype/device) for sampling

    def __call__(self, *args, **kwargs):
        """``flow(z)`` is ``forward(z)`` (an ``nn.Module``); ``flow()`` with no input draws a
        reparameterised sample, as a Pyro distribution's call does (``pyro.sample("z", flow)``)."""
        if not args and "z" not in kwargs:
            return self.rsample(**kwargs)
        return super().__call__(*args, **kwargs)

    @property
    def support(self) -> constraints.Constraint:
        return constraints.independent(constraints.real, len(self.event_shape))

    @property
    def transforms(self) -> nn.ModuleList:
        """The layers in generative order (base to data)."""
        t = self.transform
        return t.transforms if isinstance(t, Compose) else nn.ModuleList([t])

    @property
    def is_conditional(self) -> bool:
        return getattr(self.transform, "is_conditional", False)

    def _apply_transform(
        self, x: Tensor, context: Tensor | None, inverse: bool
    ) -> tuple[Tensor, Tensor]:
        t = self.transform.inverse if inverse else self.transform
        if self.is_conditional:
            if context is None:
                raise ValueError(
                    "context: this flow is conditional; pass context=(batch, context_dim)"
                )
            return t(x, context)
        if context is not None:
            raise ValueError("context: this flow is not conditional (built with context_dim=0)")
        return t(x)

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Base to data: ``x = f(z)``, ``ladj = log|det df/dz|``, shape (batch,)."""
        self._check(z, "z")
        return self._apply_transform(z, context, inverse=False)

    def inverse(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Data to base: ``z = f^{-1}(x)``, ``ladj = log|det df^{-1}/dx|``, shape (batch,)."""
        self._check(x, "x")
        return self._apply_transform(x, context, inverse=True)

    def _reference(self) -> Tensor | None:
        """A parameter, whose dtype and device inputs must have; ``None`` for a flow without
        parameters, which takes any."""
        return next(self.transform.parameters(), None)

    def _check(self, x: object, name: str) -> Tensor:
        """The entry checks: a float tensor of the flow's dtype and device, finite if validating."""
        x = check_tensor(x, name)
        reference = self._reference()
        if reference is not None:
            check_like(x, reference, name, "the flow's")
        if self._validate_args:
            check_finite(x, name)
        return x

    def base_log_prob(self, z: Tensor) -> Tensor:
        """``log N(z; 0, I)`` summed over the event dimensions."""
        dims = tuple(range(-len(self.event_shape), 0))
        d = math.prod(self.event_shape)
        return -0.5 * z.square().sum(dims) - 0.5 * d * math.log(2 * math.pi)

    def _flat(self, x: Tensor, name: str) -> tuple[Tensor, torch.Size]:
        k = len(self.event_shape)
        if x.dim() < k or tuple(x.shape[x.dim() - k :]) != tuple(self.event_shape):
            raise ValueError(
                f"{name}: expected shape (..., {', '.join(map(str, self.event_shape))}), "
                f"got {tuple(x.shape)}"
            )
        batch = x.shape[: x.dim() - k]
        return x.reshape(-1, *self.event_shape), batch

    def log_prob(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """``log p(x)`` in one inverse pass; ``x``: (..., *event_shape) -> (...).

        ``context`` (conditional flows): (..., context_dim), broadcast against ``x``'s batch shape
        (one vector (context_dim,) is shared by every ``x``).
        """
        x = self._check(x, "x")
        flat, batch = self._flat(x, "x")
        if context is not None:
            context = check_tensor(context, "context")
            if context.dim() == 0:
                raise ValueError("context: expected shape (..., context_dim), got a scalar")
            if self._validate_args:
                check_finite(context, "context")
            try:
                batch = torch.broadcast_shapes(batch, context.shape[:-1])
            except RuntimeError:
                raise ValueError(
                    f"context: batch size {tuple(context.shape[:-1])} does not broadcast with "
                    f"x's {tuple(batch)}"
                ) from None
            flat = x.expand(*batch, *self.event_shape).reshape(-1, *self.event_shape)
            context = context.expand(*batch, context.shape[-1]).reshape(-1, context.shape[-1])
        z, ladj = self._apply_transform(flat, context, inverse=True)
        return (self.base_log_prob(z) + ladj).reshape(batch)

    def _base_sample(self, n: int) -> Tensor:
        like = self._reference()
        like = self._anchor if like is None else like
        return torch.randn(n, *self.event_shape, dtype=like.dtype, device=like.device)

    def rsample(
        self, sample_shape: int | Sequence[int] = (), context: Tensor | None = None
    ) -> Tensor:
        """Reparameterised samples ``f(z)``, shape ``(*sample_shape, *event_shape)``.

        With a context (..., context_dim) whose batch shape ``...`` equals ``sample_shape``, one
        sample per context vector, shape ``(*sample_shape, *event_shape)``; with one context
        vector, or a tuple ``sample_shape``, ``sample_shape`` samples for each context vector (as
        from ``flow.condition(context)``), shape ``(*sample_shape, ..., *event_shape)``."""
        shape = torch.Size([sample_shape] if isinstance(sample_shape, int) else sample_shape)
        if context is not None:
            conditioned = self.condition(context)
            if conditioned.batch_shape == shape:
                return conditioned.rsample()
            if isinstance(sample_shape, int) and conditioned.batch_shape:
                raise ValueError(
                    f"context: batch size {tuple(conditioned.batch_shape)} differs from the "
                    f"{sample_shape} samples asked for; to draw {sample_shape} samples for each "
                    f"context vector, pass sample_shape=({sample_shape},)"
                )
            return conditioned.rsample(shape)
        x, _ = self._apply_transform(self._base_sample(math.prod(shape)), None, inverse=False)
        return x.reshape(*shape, *self.event_shape)

    def sample(
        self, sample_shape: int | Sequence[int] = (), context: Tensor | None = None
    ) -> Tensor:
        """Samples without gradient: ``flow.sample(n)`` has shape ``(n, *event_shape)``."""
        with torch.no_grad():
            return self.rsample(sample_shape, context)

    def sample_and_log_prob(self, n: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``n`` samples and their log-density from one forward pass (for reverse-KL training):
        ``log q(x) = log N(z) - log|det df/dz|``."""
        z = self._base_sample(n)
        if context is not None and context.dim() == 1:
            context = context.expand(n, -1)
        x, ladj = self._apply_transform(z, context, inverse=False)
        return x, self.base_log_prob(z) - ladj

    def condition(self, context: Tensor) -> FlowDistribution:
        """The distribution ``p(x | context)``, with batch shape ``context.shape[:-1]``."""
        if not self.is_conditional:
            raise ValueError("context: this flow is not conditional (built with context_dim=0)")
        context = check_tensor(context, "context")
        reference = self._reference()
        if reference is not None:
            check_like(context, reference, "context", "the flow's")
        if context.dim() == 0:
            raise ValueError("context: expected shape (..., context_dim), got a scalar")
        if self._validate_args:
            check_finite(context, "context")
        return FlowDistribution(self, context.shape[:-1], context)

    def expand(self, batch_shape: Sequence[int], _instance=None) -> FlowDistribution:
        """The same distribution repeated over ``batch_shape`` (independent, identical)."""
        if self.is_conditional:
            raise ValueError(
                "batch_shape: a conditional flow has no batch shape of its own; use "
                "flow.condition(context).expand(batch_shape)"
            )
        return FlowDistribution(self, torch.Size(batch_shape))

    def score_parts(self, value: Tensor):
        """Pyro's ``score_parts`` (reparameterised: no score-function term)."""
        return _score_parts(self.log_prob(value))

    def extra_repr(self) -> str:
        return f"event_shape={tuple(self.event_shape)}"


class FlowDistribution(Distribution):
    """A flow as a distribution with a batch shape: ``flow.expand(batch_shape)`` or
    ``flow.condition(context)`` (``batch_shape = context.shape[:-1]``, one conditional distribution
    per context vector). Not a module: it shares the flow's parameters.

    ``log_prob(x)`` takes ``x`` of shape ``(..., *batch_shape, *event_shape)``; ``sample(shape)``
    returns ``(*shape, *batch_shape, *event_shape)``.
    """

    arg_constraints: ClassVar[dict] = {}
    has_rsample = True

    def __init__(self, flow: Flow, batch_shape: Sequence[int], context: Tensor | None = None):
        self.flow, self.context = flow, context
        super().__init__(torch.Size(batch_shape), flow.event_shape, validate_args=False)
        if context is not None:
            # the context broadcast to the batch shape (expand of a conditioned flow)
            self.context = context.expand(*self.batch_shape, context.shape[-1])

    @property
    def support(self) -> constraints.Constraint:
        return self.flow.support

    def log_prob(self, value: Tensor) -> Tensor:
        if self.context is None:
            return self.flow.log_prob(value)
        return self.flow.log_prob(value, self.context)

    def rsample(self, sample_shape: int | Sequence[int] = ()) -> Tensor:
        shape = torch.Size([sample_shape] if isinstance(sample_shape, int) else sample_shape)
        shape = shape + self.batch_shape
        n = math.prod(shape)
        context = None
        if self.context is not None:
            ctx = self.context.expand(*shape, self.context.shape[-1])
            context = ctx.reshape(n, self.context.shape[-1])
        x, _ = self.flow._apply_transform(self.flow._base_sample(n), context, inverse=False)
        return x.reshape(*shape, *self.event_shape)

    def sample(self, sample_shape: int | Sequence[int] = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def expand(self, batch_shape: Sequence[int], _instance=None) -> FlowDistribution:
        return FlowDistribution(self.flow, torch.Size(batch_shape), self.context)

    def __call__(self, sample_shape: int | Sequence[int] = ()) -> Tensor:
        """A reparameterised sample, as a Pyro distribution's call gives."""
        return self.rsample(sample_shape)

    def score_parts(self, value: Tensor):
        """Pyro's ``score_parts`` (reparameterised: no score-function term)."""
        return _score_parts(self.log_prob(value))


def _score_parts(log_prob: Tensor):
    """Pyro's ``ScoreParts`` of a reparameterised distribution (only Pyro calls this)."""
    from pyro.distributions.score_parts import ScoreParts

    return ScoreParts(log_prob=log_prob, score_function=0, entropy_term=log_prob)


def _conditioner_factory(conditioner: str | Callable, hidden_dim: int, num_hidden: int) -> Callable:
    if callable(conditioner):
        return conditioner
    if conditioner == "mlp":
        return lambda i, o: MLP(i, o, hidden=(hidden_dim,) * num_hidden)
    if conditioner == "attention":
        return lambda i, o: Attention(
            i, o, embed_dim=hidden_dim // 2 or 1, num_layers=num_hidden - 1 or 1
        )
    raise ValueError(f"conditioner: expected 'mlp', 'attention' or a factory, got {conditioner!r}")


def _coupling_class(coupling: str) -> type:
    if coupling not in COUPLINGS:
        raise ValueError(f"coupling: expected one of {sorted(COUPLINGS)}, got {coupling!r}")
    return COUPLINGS[coupling]


def _coupling_kwargs(
    coupling: str, num_bins: int, bound: float, scale: str, scale_bound: float
) -> dict:
    if coupling in ("spline", "piecewise_linear"):
        return {"num_bins": num_bins, "bound": bound}
    if coupling == "affine":
        return {"scale": scale, "scale_bound": scale_bound}
    return {}


class CouplingFlow(Flow):
    """A stack of couplings with permutations between them and a standard-normal base.

    Layer ``i`` transforms one half of the vector given the other. So that every dimension is
    transformed and every pair interacts:

    - ``permutation="reverse"`` (default, as RealNVP does between its couplings): the order is
      reversed between couplings, all of which keep the first half unchanged (for odd ``dim`` the
      half's size alternates between ``dim // 2`` and ``dim // 2 + 1``, so the middle coordinate is
      in each half in turn);
    - ``"random"`` (a fixed random shuffle, the ablation of Glow §3.2), ``"lu"`` (Glow's learned
      1x1 convolution as a linear map) or ``None`` (no permutation: the couplings alternate their
      halves, as NICE alternates odd and even partitions): the couplings alternate their mask
      (``flip = i % 2``), with the permutation between.

    (Alternating *and* reversing would undo each other for ``dim = 2``: the same half would be
    transformed every time.)

    Args:
        dim: data dimension (>= 2).
        num_layers: number of couplings.
        coupling: ``"affine"``, ``"additive"``, ``"spline"`` or ``"piecewise_linear"`` (used
            inverted, so that its equal-width bins lie on the data side).
        hidden_dim, num_hidden: conditioner size (``num_hidden`` hidden layers of ``hidden_dim``).
        conditioner: ``"mlp"``, ``"attention"`` or a factory ``(in, out) -> nn.Module``.
        num_bins, bound: spline bins and tail bound; scale, scale_bound: affine scale choice.
        context_dim: size of a context vector for a conditional flow ``p(x | c)``.
        seed: seed of the random permutations.
        validate_args: check input values (see :class:`Flow`); ``None`` follows the global default.
    """

    def __init__(
        self,
        dim: int,
        num_layers: int = 8,
        coupling: str = "affine",
        hidden_dim: int = 64,
        num_hidden: int = 2,
        permutation: str | None = "reverse",
        conditioner: str | Callable = "mlp",
        num_bins: int = 8,
        bound: float = 3.0,
        scale: str = "exp",
        scale_bound: float = 2.0,
        context_dim: int = 0,
        seed: int = 0,
        validate_args: bool | None = None,
    ):
        if not isinstance(dim, int) or dim < 2:
            raise ValueError(f"dim: a coupling flow needs an integer dim >= 2, got {dim!r}")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers: expected a positive integer, got {num_layers!r}")
        if permutation not in ("reverse", "random", "lu", None):
            raise ValueError(
                f"permutation: expected 'reverse', 'random', 'lu' or None, got {permutation!r}"
            )
        cls = _coupling_class(coupling)
        kwargs = _coupling_kwargs(coupling, num_bins, bound, scale, scale_bound)
        factory = _conditioner_factory(conditioner, hidden_dim, num_hidden)
        layers: list[Transform] = []
        for i in range(num_layers):
            if permutation == "reverse":
                # Reversal maps the middle of an odd dim onto itself: with one fixed split it would
                # always sit in the same half. Alternating the split size (d//2, then d//2 + 1
                # unchanged) puts it in each half in turn. For even dim this is the plain half split.
                mask = torch.arange(dim) < (dim + i % 2) // 2
            else:
                mask = channel_mask(dim, flip=i % 2 == 1)
            layer = cls(dim, mask=mask, conditioner=factory, context_dim=context_dim, **kwargs)
            if coupling == "piecewise_linear":
                # Fixed equal-width bins on the data side (as in Neural Importance Sampling): then
                # which bin a data point falls in never depends on the parameters, and log_prob is
                # smooth in them. With the learned knots on the data side, points jump between bins
                # as the knots move and gradient steps do not see the jumps.
                layer = Inverse(layer)
            layers.append(layer)
            if i < num_layers - 1 and permutation is not None:
                if permutation == "reverse":
                    layers.append(ReversePermutation(dim))
                elif permutation == "random":
                    layers.append(RandomPermutation(dim, seed=seed + i))
                else:
                    layers.append(InvertibleConv1x1(dim, seed=seed + i))
        super().__init__(Compose(layers), (dim,), validate_args=validate_args)
        self.dim, self.coupling = dim, coupling


class AutoregressiveFlow(Flow):
    """MAF: ``log_prob`` in one pass per layer, ``sample`` in ``dim`` sequential passes per layer.

    Each layer is the inverse of a :class:`~cflib.autoregressive.MaskedAutoregressive` transform,
    with order reversal between layers. Here for comparison with coupling flows.
    """

    def __init__(self, dim: int, num_layers: int = 4, hidden_dim: int = 64, num_hidden: int = 2):
        layers: list[Transform] = []
        for i in range(num_layers):
            layers.append(Inverse(MaskedAutoregressive(dim, hidden=(hidden_dim,) * num_hidden)))
            if i < num_layers - 1:
                layers.append(ReversePermutation(dim))
        super().__init__(Compose(layers), (dim,))
        self.dim = dim


class MultiScaleFlow(Flow):
    """RealNVP's multi-scale image flow on ``(C, H, W)``.

    Data-to-base direction, per scale: ``num_couplings`` checkerboard couplings, ``Squeeze``,
    ``num_couplings`` channel couplings (with a learned 1x1 convolution before each if
    ``conv1x1``), then half the channels are factored out and the other half goes to the next
    scale; the last scale is ``num_couplings + 1`` checkerboard couplings. Masks alternate.
    ``H`` and ``W`` must be divisible by ``2 ** (num_scales - 1)``.
    """

    def __init__(
        self,
        shape: Sequence[int],
        num_scales: int = 2,
        num_couplings: int = 3,
        coupling: str = "affine",
        hidden_channels: int = 32,
        num_blocks: int = 2,
        conv1x1: bool = False,
        num_bins: int = 8,
        bound: float = 3.0,
        scale: str = "tanh",
        scale_bound: float = 2.0,
    ):
        shape = tuple(shape)
        if len(shape) != 3:
            raise ValueError(f"shape: expected (C, H, W), got {shape!r}")
        c, h, w = shape
        if num_scales < 1 or h % 2 ** (num_scales - 1) or w % 2 ** (num_scales - 1):
            raise ValueError(
                f"shape: H and W must be divisible by 2**(num_scales-1) = {2 ** (num_scales - 1)}, "
                f"got H={h}, W={w}"
            )
        cls = _coupling_class(coupling)
        kwargs = _coupling_kwargs(coupling, num_bins, bound, scale, scale_bound)
        kwargs |= {"hidden_dim": hidden_channels, "num_hidden": num_blocks}

        def scale_block(c: int, h: int, w: int, level: int) -> Transform:
            last = level == num_scales - 1
            n_cb = num_couplings + 1 if last else num_couplings
            layers: list[Transform] = [
                cls((c, h, w), mask=checkerboard_mask(h, w, flip=i % 2 == 1), **kwargs)
                for i in range(n_cb)
            ]
            if last:
                return Compose(layers)
            layers.append(Squeeze())
            for i in range(num_couplings):
                if conv1x1:
                    layers.append(InvertibleConv1x1(4 * c, seed=level * 100 + i))
                layers.append(
                    cls(
                        (4 * c, h // 2, w // 2), mask=channel_mask(4 * c, flip=i % 2 == 1), **kwargs
                    )
                )
            layers.append(FactorOut(scale_block(2 * c, h // 2, w // 2, level + 1), split=2 * c))
            layers.append(Inverse(Squeeze()))
            return Compose(layers)

        super().__init__(Inverse(scale_block(c, h, w, 0)), shape)
        self.image_shape = shape
