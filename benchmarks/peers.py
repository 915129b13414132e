"""The same coupling layers and flows built in cflib and in each peer library.

Every builder takes the conditioner networks (plain ``nn.Sequential`` MLPs, the same weights for
every library) and returns an object with one interface:

- :class:`Layer`: ``forward(x) -> (y, ladj)`` and ``inverse(y) -> (x, ladj)``, ``ladj`` of shape
  ``(batch,)``, written with each library's public API as its documentation shows it;
- :class:`Density`: ``log_prob(x)`` (shape ``(batch,)``) and ``parameters()``, for training steps.

Wherever the libraries cannot be configured identically, :data:`NOTES` says how they differ.
"""

from __future__ import annotations

import copy
import functools
import importlib
import importlib.metadata
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

import cflib

PEERS = ("nflows", "zuko", "normflows", "pyro")
LIBRARIES = ("cflib", *PEERS)

# nflows (and normflows, which vendors it) warns on every call when the conditioner has no
# ``hidden_features`` attribute; ours has none on purpose (see NOTES), so the warning is noise.
warnings.filterwarnings("ignore", message="Inputs to the softmax are not scaled down")

NOTES = [
    "All libraries: the same conditioner weights (MLP in -> 64 -> 64 -> out, ReLU), K bins, "
    "bound B, identity (linear) tails outside [-B, B], end-knot slopes 1, half split "
    "(first half unchanged).",
    "nflows, normflows: min bin width/height and min slope 1e-3 as in cflib; the conditioner is "
    "wrapped in a one-line module that drops their `context` argument; it has no "
    "`hidden_features` attribute, so they do not divide the width/height logits by sqrt(64).",
    "nflows, normflows, pyro: interior slope = 1e-3 + softplus(raw), so raw 0 gives 0.694; "
    "cflib shifts the softplus so that raw 0 gives slope 1 (identity at zero init).",
    "normflows: its public CoupledRationalQuadraticSpline builds a ResidualNet conditioner; it is "
    "replaced by the shared MLP (the layer inside is normflows' vendored nflows coupling).",
    "zuko: no minimum bin size or slope parameters; its MonotonicRQSTransform soft-clips the "
    "logits (bins >= ~1.4e-4 * 2B for K = 8, slopes in (1e-3, 1e3)): the same conditioner "
    "outputs give a different spline.",
    "zuko: the inverse log-det comes from inv.call_and_ladj, which runs the conditioner and the "
    "forward spline a second time (its API has no one-pass inverse with log-det).",
    "pyro: SplineCoupling(order='quadratic', identity=True) with a hypernet returning (widths, "
    "heights, derivatives); the last layer's rows are reordered so pyro sees the same raw "
    "parameters; its transform cache is cleared before every timed call (a repeated call would "
    "return the cached result).",
    "Training step: NLL = -mean log p(x) through each library's density API, every library "
    "mapping data to noise with its layers' forward maps (x e^s + t, the rational function): "
    "nflows, zuko and normflows do so natively; cflib's CouplingFlow and pyro's "
    "TransformedDistribution are written noise -> data, so their layers are used the other way "
    "round (cflib.Flow(cflib.Inverse(...)), pyro .inv).",
    "cflib evaluates a Linear/ReLU Sequential conditioner itself, as one autograd function: the "
    "last linear layer writes the parameter-major layout, each ReLU acts in place, and the "
    "hand-written backward masks each hidden gradient in place (one allocation fewer per layer "
    "and direction); the 'conditioner alone' rows call the same network as an ordinary module.",
    "Functional kernels: cflib.splines.rational_quadratic_spline, nflows' and normflows' "
    "unconstrained_rational_quadratic_spline, zuko's MonotonicRQSTransform (built from the "
    "parameters, then call_and_ladj; its inverse log-det runs the forward spline again) and "
    "pyro's _monotonic_rational_spline after the softmax/softplus its transforms apply (pyro has "
    "no public functional spline).",
    "Affine couplings: each library's own scale map (cflib exp, nflows sigmoid(r + 2) + 1e-3, "
    "zuko soft-clipped exp, normflows exp, pyro clamp to [-5, 3]); normflows wraps each coupling "
    "in Split/Merge layers (AffineCouplingBlock).",
]


def versions() -> dict[str, str | None]:
    """Installed version of each library, ``None`` when it cannot be imported."""
    out: dict[str, str | None] = {}
    for lib in LIBRARIES:
        try:
            importlib.import_module(lib)
        except ImportError:
            out[lib] = None
            continue
        dist = {"cflib": "coupling-layers-course", "pyro": "pyro-ppl"}.get(lib, lib)
        try:
            out[lib] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[lib] = "unknown"
    return out


def mlp(d_in: int, d_out: int, seed: int, scale: float = 1.0, hidden: int = 64) -> nn.Sequential:
    """``d_in -> hidden -> hidden -> d_out`` with ReLU, PyTorch's default initialisation drawn
    from ``seed``, and the last layer's weight and bias multiplied by ``scale`` (so that the
    conditioner's outputs are about ``scale`` times larger)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Linear(d_in, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, d_out),
        )
    with torch.no_grad():
        net[-1].weight.mul_(scale)
        net[-1].bias.mul_(scale)
    return net


def num_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class _NoContext(nn.Module):
    """nflows and normflows call ``net(x, context)``; a plain MLP takes ``x`` only."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return self.net(x)


class _PyroHead(nn.Module):
    """Pyro's hypernet interface: a tuple of ``(batch, n_b * size)`` tensors, one per parameter
    kind. The last layer's rows are reordered from cflib's (element, parameter) order to
    blocks of widths, heights and derivatives, so that the raw values are identical."""

    def __init__(self, net: nn.Sequential, n_b: int, sizes: Sequence[int]):
        super().__init__()
        self.net = copy.deepcopy(net)
        total = sum(sizes)
        order, start = [], 0
        for size in sizes:  # block of parameter kind `size`: element j's entries start..start+size
            order += [j * total + start + i for j in range(n_b) for i in range(size)]
            start += size
        with torch.no_grad():
            self.net[-1].weight.copy_(net[-1].weight[order])
            self.net[-1].bias.copy_(net[-1].bias[order])
        self.splits = [n_b * s for s in sizes]

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.net(x).split(self.splits, dim=-1))


@dataclass
class Layer:
    """One coupling layer of one library behind a common interface."""

    module: nn.Module
    forward: Callable[[Tensor], tuple[Tensor, Tensor]]
    inverse: Callable[[Tensor], tuple[Tensor, Tensor]]


@dataclass
class Density:
    """A flow of one library: ``log_prob(x)`` and its trainable parameters."""

    module: nn.Module
    log_prob: Callable[[Tensor], Tensor]

    def parameters(self) -> Iterator[nn.Parameter]:
        return self.module.parameters()


# ------------------------------------------------------------------ one spline coupling layer


def spline_layer(lib: str, dim: int, net: nn.Sequential, num_bins: int, bound: float) -> Layer:
    """A rational-quadratic spline coupling on ``dim`` features, first half unchanged, with the
    conditioner ``net`` (copied): ``net`` maps ``dim // 2`` features to
    ``(dim - dim // 2) * (3 K - 1)`` raw parameters in cflib's (element, parameter) order."""
    net = copy.deepcopy(net)
    return _SPLINE_LAYERS[lib](dim, net, num_bins, bound)


def _cflib_spline(dim: int, net: nn.Module, k: int, bound: float) -> Layer:
    layer = cflib.SplineCoupling(dim, conditioner=net, num_bins=k, bound=bound)
    return Layer(layer, layer.forward, layer.inverse)


def _nflows_like_spline(cls: type, dim: int, net: nn.Module, k: int, bound: float) -> nn.Module:
    mask = (torch.arange(dim) >= dim // 2).int() * 2 - 1  # > 0: transformed
    return cls(
        mask,
        lambda i, o: _NoContext(net),
        num_bins=k,
        tails="linear",
        tail_bound=bound,
        min_bin_width=1e-3,
        min_bin_height=1e-3,
        min_derivative=1e-3,
    )


def _nflows_spline(dim: int, net: nn.Module, k: int, bound: float) -> Layer:
    from nflows.transforms import PiecewiseRationalQuadraticCouplingTransform

    layer = _nflows_like_spline(PiecewiseRationalQuadraticCouplingTransform, dim, net, k, bound)
    return Layer(layer, layer.forward, layer.inverse)


def _normflows_spline(dim: int, net: nn.Module, k: int, bound: float) -> Layer:
    from normflows.flows.neural_spline.coupling import PiecewiseRationalQuadraticCoupling

    layer = _nflows_like_spline(PiecewiseRationalQuadraticCoupling, dim, net, k, bound)
    return Layer(layer, layer.forward, layer.inverse)


def _zuko_coupling(dim: int, net: nn.Module, **kwargs) -> nn.Module:
    from zuko.flows import GeneralCouplingTransform

    lazy = GeneralCouplingTransform(dim, mask=torch.arange(dim) < dim // 2, **kwargs)
    lazy.hyper = net  # the same MLP (zuko's own is an identical Sequential of Linear/ReLU)
    return lazy


def _zuko_spline(dim: int, net: nn.Module, k: int, bound: float) -> Layer:
    from zuko.transforms import MonotonicRQSTransform

    univariate = functools.partial(MonotonicRQSTransform, bound=bound)
    lazy = _zuko_coupling(dim, net, univariate=univariate, shapes=[(k,), (k,), (k - 1,)])
    return Layer(lazy, lambda x: lazy().call_and_ladj(x), lambda y: lazy().inv.call_and_ladj(y))


def _pyro_uncached(t, fn: Callable[[Tensor], tuple[Tensor, Tensor]]):
    def call(v: Tensor) -> tuple[Tensor, Tensor]:
        t._cached_x_y = (None, None)  # a repeated call would otherwise return the cached result
        return fn(v)

    return call


def _pyro_spline(dim: int, net: nn.Module, k: int, bound: float) -> Layer:
    from pyro.distributions.transforms import SplineCoupling

    split, n_b = dim // 2, dim - dim // 2
    t = SplineCoupling(
        dim, split, _PyroHead(net, n_b, (k, k, k - 1)), k, bound, order="quadratic", identity=True
    )

    def forward(x: Tensor) -> tuple[Tensor, Tensor]:
        y = t(x)
        return y, t.log_abs_det_jacobian(x, y)  # from the cache filled by t(x)

    def inverse(y: Tensor) -> tuple[Tensor, Tensor]:
        x = t.inv(y)
        return x, -t.log_abs_det_jacobian(x, y)

    return Layer(t, _pyro_uncached(t, forward), _pyro_uncached(t, inverse))


_SPLINE_LAYERS = {
    "cflib": _cflib_spline,
    "nflows": _nflows_spline,
    "normflows": _normflows_spline,
    "zuko": _zuko_spline,
    "pyro": _pyro_spline,
}


# ------------------------------------------------------------------ functional spline kernels

Kernel = Callable[[Tensor, Tensor, bool], tuple[Tensor, Tensor]]


def spline_kernel(lib: str, num_bins: int, bound: float) -> Kernel:
    """Each library's own elementwise rational-quadratic spline, called as a function:
    ``kernel(x, raw, inverse) -> (y, ladj)`` with ``x`` of shape ``(...)``, ``raw`` the unnormalised
    parameters ``(..., 3 K - 1)`` (widths, heights, interior slopes) and ``ladj`` elementwise."""
    k = num_bins

    def split(raw: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return raw[..., :k], raw[..., k : 2 * k], raw[..., 2 * k :]

    if lib == "cflib":
        from cflib.splines import rational_quadratic_spline

        def kernel(x: Tensor, raw: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
            return rational_quadratic_spline(x, *split(raw), inverse=inverse, bound=bound)

    elif lib in ("nflows", "normflows"):
        module = "nflows.transforms.splines.rational_quadratic"
        module = module if lib == "nflows" else "normflows.utils.splines"
        rqs = importlib.import_module(module).unconstrained_rational_quadratic_spline

        def kernel(x: Tensor, raw: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
            w, h, d = split(raw)
            return rqs(x, w, h, d, inverse=inverse, tails="linear", tail_bound=bound,
                       min_bin_width=1e-3, min_bin_height=1e-3, min_derivative=1e-3)  # fmt: skip

    elif lib == "zuko":
        from zuko.transforms import MonotonicRQSTransform

        def kernel(x: Tensor, raw: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
            t = MonotonicRQSTransform(*split(raw), bound=bound)
            return (t.inv if inverse else t).call_and_ladj(x)

    elif lib == "pyro":
        from pyro.distributions.transforms.spline import _monotonic_rational_spline

        def kernel(x: Tensor, raw: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
            w, h, d = split(raw)
            # what pyro's spline transforms do before calling the kernel
            w, h, d = w.softmax(-1), h.softmax(-1), torch.nn.functional.softplus(d)
            return _monotonic_rational_spline(x, w, h, d, None, inverse=inverse, bound=bound)

    else:
        raise ValueError(f"lib: expected one of {LIBRARIES}, got {lib!r}")
    return kernel


# ------------------------------------------------------------------ flows for the training step


def flow(
    lib: str,
    kind: str,
    dim: int,
    nets: Sequence[nn.Sequential],
    num_bins: int,
    bound: float,
    device: torch.device,
) -> Density:
    """``len(nets)`` couplings (``kind`` = ``"spline"`` or ``"affine"``) with order reversals
    between them and a standard-normal base, each coupling's conditioner a copy of ``nets[i]``,
    on ``device``."""
    nets = [copy.deepcopy(n) for n in nets]
    with torch.device(device):  # tensors the builders create (pyro's permutation) land there
        density = _FLOWS[lib](kind, dim, nets, num_bins, bound)
    density.module.to(device)
    return density


def _cflib_flow(kind: str, dim: int, nets: list, k: int, bound: float) -> Density:
    it = iter(nets)
    stack = cflib.CouplingFlow(
        dim, num_layers=len(nets), coupling=kind, conditioner=lambda i, o: next(it),
        num_bins=k, bound=bound,
    )  # fmt: skip
    # CouplingFlow's layers go base -> data, so its log_prob runs their inverses; used the other
    # way round, log_prob runs their forward maps, the direction the peers' log_prob runs.
    f = cflib.Flow(cflib.Inverse(stack.transform), (dim,))
    return Density(f, f.log_prob)


def _nflows_flow(kind: str, dim: int, nets: list, k: int, bound: float) -> Density:
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.transforms import (
        AffineCouplingTransform,
        CompositeTransform,
        PiecewiseRationalQuadraticCouplingTransform,
        ReversePermutation,
    )

    layers: list[nn.Module] = []
    for i, net in enumerate(nets):
        if kind == "spline":
            cls = PiecewiseRationalQuadraticCouplingTransform
            layers.append(_nflows_like_spline(cls, dim, net, k, bound))
        else:
            mask = (torch.arange(dim) >= dim // 2).int() * 2 - 1
            layers.append(AffineCouplingTransform(mask, lambda i, o, net=net: _NoContext(net)))
        if i < len(nets) - 1:
            layers.append(ReversePermutation(dim))
    f = Flow(CompositeTransform(layers), StandardNormal([dim]))
    return Density(f, f.log_prob)


def _normflows_flow(kind: str, dim: int, nets: list, k: int, bound: float) -> Density:
    import normflows as nf
    from normflows.flows.neural_spline.coupling import PiecewiseRationalQuadraticCoupling

    class _Params(nn.Module):  # normflows' affine param_map: (batch, split) -> (batch, 2 n_b)
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, z: Tensor) -> Tensor:
            return self.net(z)

    flows: list[nn.Module] = []
    for i, net in enumerate(nets):
        if kind == "spline":
            block = nf.flows.CoupledRationalQuadraticSpline(
                dim, 1, 8, num_bins=k, tails="linear", tail_bound=bound
            )
            block.prqct = _nflows_like_spline(
                PiecewiseRationalQuadraticCoupling, dim, net, k, bound
            )
        else:
            block = nf.flows.AffineCouplingBlock(_Params(net), scale=True, scale_map="exp")
        flows.append(block)
        if i < len(nets) - 1:
            flows.append(nf.flows.Permute(dim, mode="swap"))
    f = nf.NormalizingFlow(q0=nf.distributions.DiagGaussian(dim, trainable=False), flows=flows)
    return Density(f, f.log_prob)


def _zuko_flow(kind: str, dim: int, nets: list, k: int, bound: float) -> Density:
    from zuko.distributions import DiagNormal
    from zuko.flows import Flow, UnconditionalDistribution, UnconditionalTransform
    from zuko.transforms import MonotonicRQSTransform, PermutationTransform

    transforms: list[nn.Module] = []
    for i, net in enumerate(nets):
        if kind == "spline":
            univariate = functools.partial(MonotonicRQSTransform, bound=bound)
            shapes = [(k,), (k,), (k - 1,)]
            transforms.append(_zuko_coupling(dim, net, univariate=univariate, shapes=shapes))
        else:
            transforms.append(_zuko_coupling(dim, net))
        if i < len(nets) - 1:
            order = torch.arange(dim - 1, -1, -1)
            transforms.append(UnconditionalTransform(PermutationTransform, order, buffer=True))
    base = UnconditionalDistribution(DiagNormal, torch.zeros(dim), torch.ones(dim), buffer=True)
    f = Flow(transforms, base)
    return Density(f, lambda x: f().log_prob(x))


def _pyro_flow(kind: str, dim: int, nets: list, k: int, bound: float) -> Density:
    import pyro.distributions as dist
    from pyro.distributions.transforms import AffineCoupling, Permute, SplineCoupling

    split, n_b = dim // 2, dim - dim // 2
    layers: list = []  # data -> base, closed-form direction
    for i, net in enumerate(nets):
        if kind == "spline":
            head = _PyroHead(net, n_b, (k, k, k - 1))
            layers.append(SplineCoupling(dim, split, head, k, bound, "quadratic", identity=True))
        else:
            layers.append(AffineCoupling(split, _PyroHead(net, n_b, (1, 1))))
        if i < len(nets) - 1:
            layers.append(Permute(torch.arange(dim - 1, -1, -1)))
    module = nn.ModuleList([t for t in layers if isinstance(t, nn.Module)])

    def log_prob(x: Tensor) -> Tensor:
        zeros = x.new_zeros(dim)
        base = dist.Normal(zeros, torch.ones_like(zeros)).to_event(1)
        # TransformedDistribution's transforms go base -> data: the inverses, in reverse order.
        return dist.TransformedDistribution(base, [t.inv for t in reversed(layers)]).log_prob(x)

    return Density(module, log_prob)


_FLOWS = {
    "cflib": _cflib_flow,
    "nflows": _nflows_flow,
    "normflows": _normflows_flow,
    "zuko": _zuko_flow,
    "pyro": _pyro_flow,
}
