"""Two-dimensional target densities with exact log-densities, energy targets, and the digits data.

Every target has ``log_prob(x) -> (batch,)`` for ``x`` of shape ``(batch, 2)`` (computed in the
input's dtype and on its device), ``sample(n, generator=None) -> (n, 2)`` (default dtype, CPU,
reproducible through a ``torch.Generator``), a ``name`` and ``bounds = (lo, hi)``, the square
``[lo, hi]^2`` that holds (almost) all of its mass, for plotting.

The densities of :class:`Checkerboard`, :class:`EightGaussians`, :class:`Rings`,
:class:`UniformDisk` and :class:`UniformSquare` are exact and normalised (``normalized = True``);
``log_prob`` is ``-inf`` outside the support. :class:`TwoMoons` has samples only. The energy
targets :class:`DoubleWell` and :class:`MuellerBrown` have ``log_prob = -energy / temperature``,
*unnormalised* (``normalized = False``), with ``log_normalizer()`` computed numerically.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
import torch
from scipy import integrate, special
from torch import Tensor

from cflib.validation import check_event

__all__ = [
    "TARGETS",
    "Checkerboard",
    "DoubleWell",
    "EightGaussians",
    "EnergyTarget",
    "MuellerBrown",
    "Rings",
    "Target",
    "TwoMoons",
    "UniformDisk",
    "UniformSquare",
    "get_target",
    "load_digits",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _check_n(n: object) -> int:
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n: expected a non-negative int, got {n!r}")
    return int(n)


def _check_generator(generator: object) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator: expected a torch.Generator or None, got {type(generator).__name__}"
        )
    return generator


def _piecewise(inside: Tensor, log_density: float, like: Tensor) -> Tensor:
    """``log_density`` where ``inside``, ``-inf`` elsewhere, in ``like``'s dtype and device."""
    return torch.where(inside, like.new_tensor(log_density), like.new_tensor(-math.inf))


def _positive(value: float, name: str) -> float:
    value = float(value)
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name}: expected a positive finite number, got {value}")
    return value


class Target:
    """A distribution on the plane: ``log_prob``, ``sample``, ``name``, ``bounds``.

    Subclasses implement ``_log_prob(x)`` (``x`` already checked) and ``_sample(n, generator)``
    (any float dtype; ``sample`` converts), and set ``normalized = False`` when ``log_prob`` is
    not an exact normalised log-density.
    """

    name: str = "target"
    dim: int = 2
    normalized: bool = True
    bounds: tuple[float, float] = (-4.0, 4.0)

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p(x)`` for ``x`` of shape ``(batch, 2)``, shape ``(batch,)``."""
        return self._log_prob(check_event(x, (2,), "x"))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` independent samples, shape ``(n, 2)``, default dtype, CPU."""
        n, generator = _check_n(n), _check_generator(generator)
        return self._sample(n, generator).to(torch.get_default_dtype())

    def _log_prob(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no log_prob")

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no sampler")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Checkerboard(Target):
    r"""Uniform on the black cells of a ``num_cells x num_cells`` board covering ``[-size, size]^2``.

    Cell ``(i, j)`` (from the lower-left corner, half-open) is black when ``i + j`` is even; the
    density is ``1 / (black cells * cell area)`` on black cells and 0 elsewhere.
    """

    name = "checkerboard"

    def __init__(self, num_cells: int = 4, size: float = 2.0):
        if not isinstance(num_cells, int) or isinstance(num_cells, bool) or num_cells < 1:
            raise ValueError(f"num_cells: expected a positive int, got {num_cells!r}")
        self.num_cells = num_cells
        self.size = _positive(size, "size")
        self.cell = 2.0 * self.size / num_cells
        black = [(i, j) for i in range(num_cells) for j in range(num_cells) if (i + j) % 2 == 0]
        self._black = torch.tensor(black, dtype=torch.float64)
        self._log_density = -math.log(len(black) * self.cell**2)
        self.bounds = (-1.1 * self.size, 1.1 * self.size)

    def _log_prob(self, x: Tensor) -> Tensor:
        inside = ((x >= -self.size) & (x < self.size)).all(dim=-1)
        cells = torch.floor((x + self.size) / self.cell).sum(dim=-1)
        black = inside & (torch.remainder(cells, 2) == 0)
        return _piecewise(black, self._log_density, x)

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        which = torch.randint(len(self._black), (n,), generator=generator)
        offset = torch.rand(n, 2, generator=generator, dtype=torch.float64)
        return (self._black[which] + offset) * self.cell - self.size

    def __repr__(self) -> str:
        return f"Checkerboard(num_cells={self.num_cells}, size={self.size})"


class EightGaussians(Target):
    r"""Equal mixture of 8 isotropic Gaussians ``N(mu_k, std^2 I)``, ``mu_k`` on a circle.

    ``mu_k = radius (cos(2 pi k / 8), sin(2 pi k / 8))``,
    ``log p(x) = logsumexp_k [-|x - mu_k|^2 / (2 std^2)] - log(2 pi std^2) - log 8``.
    """

    name = "eight_gaussians"

    def __init__(self, radius: float = 2.0, std: float = 0.3):
        self.radius = _positive(radius, "radius")
        self.std = _positive(std, "std")
        angles = torch.arange(8, dtype=torch.float64) * (2.0 * math.pi / 8)
        self.centers = self.radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
        self.bounds = (-(self.radius + 4 * self.std), self.radius + 4 * self.std)

    def _log_prob(self, x: Tensor) -> Tensor:
        mu = self.centers.to(x)
        sq = ((x[:, None, :] - mu) ** 2).sum(dim=-1)
        const = math.log(2.0 * math.pi * self.std**2) + math.log(8.0)
        return torch.logsumexp(-sq / (2.0 * self.std**2), dim=-1) - const

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        which = torch.randint(8, (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return self.centers[which] + self.std * noise

    def __repr__(self) -> str:
        return f"EightGaussians(radius={self.radius}, std={self.std})"


class Rings(Target):
    r"""Mixture of rings: the radius of ring ``k`` is ``N(r_k, std^2)`` truncated to ``r > 0``.

    The angle is uniform, so with ``r = |x|``
    ``p(x) = sum_k w_k p_k(r) / (2 pi r)``,
    ``p_k(r) = N(r; r_k, std^2) / Phi(r_k / std)`` for ``r > 0``,
    where ``Phi(r_k / std)`` is the exact truncation normaliser. The density has an integrable
    ``1/r`` singularity at the origin: ``log_prob`` is ``+inf`` at ``x = 0`` exactly.
    """

    name = "rings"

    def __init__(
        self,
        radii: tuple[float, ...] = (1.0, 2.0, 3.0),
        std: float = 0.15,
        weights: tuple[float, ...] | None = None,
    ):
        self.radii = tuple(_positive(r, "radii") for r in radii)
        if not self.radii:
            raise ValueError("radii: expected at least one radius")
        self.std = _positive(std, "std")
        if weights is None:
            weights = (1.0,) * len(self.radii)
        if len(weights) != len(self.radii):
            raise ValueError(f"weights: expected {len(self.radii)} weights, got {len(weights)}")
        w = np.array([_positive(v, "weights") for v in weights])
        self.weights = tuple(float(v) for v in w / w.sum())
        a = np.array(self.radii) / self.std
        self._log_mass = special.log_ndtr(a)  # log Phi(r_k / std), exact in float64
        self._log_comp = np.log(self.weights) - self._log_mass - math.log(self.std) - 0.5 * _LOG_2PI
        self._upper = special.ndtr(a)
        hi = max(self.radii) + 4.0 * self.std
        self.bounds = (-hi, hi)

    def radial_log_prob(self, r: Tensor) -> Tensor:
        """Log-density of the radius ``|x|``, ``log sum_k w_k p_k(r)`` (``-inf`` for ``r <= 0``)."""
        radii = torch.tensor(self.radii, dtype=r.dtype, device=r.device)
        comp = torch.tensor(self._log_comp, dtype=r.dtype, device=r.device)
        z = (r[..., None] - radii) / self.std
        out = torch.logsumexp(comp - 0.5 * z**2, dim=-1)
        return torch.where(r > 0, out, -math.inf)

    def _log_prob(self, x: Tensor) -> Tensor:
        r = torch.linalg.vector_norm(x, dim=-1)
        radial = self.radial_log_prob(torch.where(r > 0, r, 1.0))
        return torch.where(r > 0, radial - _LOG_2PI - torch.log(r), math.inf)

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        weights = torch.tensor(self.weights, dtype=torch.float64)
        which = torch.multinomial(weights, n, replacement=True, generator=generator)
        # Truncated normal by inversion: with v ~ U(0, Phi(r_k/std)], r = r_k - std * ndtri(v) > 0.
        upper = torch.tensor(self._upper, dtype=torch.float64)[which]
        v = upper * (1.0 - torch.rand(n, generator=generator, dtype=torch.float64))
        r = torch.tensor(self.radii, dtype=torch.float64)[which] - self.std * torch.special.ndtri(v)
        theta = 2.0 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        return r[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)

    def __repr__(self) -> str:
        return f"Rings(radii={self.radii}, std={self.std}, weights={self.weights})"


class UniformDisk(Target):
    """Uniform on the closed disk ``|x| <= radius``: ``log p = -log(pi radius^2)`` inside."""

    name = "uniform_disk"

    def __init__(self, radius: float = 1.0):
        self.radius = _positive(radius, "radius")
        self.bounds = (-1.25 * self.radius, 1.25 * self.radius)

    def _log_prob(self, x: Tensor) -> Tensor:
        inside = (x**2).sum(dim=-1) <= self.radius**2
        return _piecewise(inside, -math.log(math.pi * self.radius**2), x)

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
        r = self.radius * torch.sqrt(u[:, 0])  # P(|x| <= r) = (r / radius)^2
        theta = 2.0 * math.pi * u[:, 1]
        return r[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)

    def __repr__(self) -> str:
        return f"UniformDisk(radius={self.radius})"


class UniformSquare(Target):
    """Uniform on the closed square ``[-half_width, half_width]^2``: ``log p = -log(4 a^2)``."""

    name = "uniform_square"

    def __init__(self, half_width: float = 1.0):
        self.half_width = _positive(half_width, "half_width")
        self.bounds = (-1.25 * self.half_width, 1.25 * self.half_width)

    def _log_prob(self, x: Tensor) -> Tensor:
        inside = (x.abs() <= self.half_width).all(dim=-1)
        return _piecewise(inside, -math.log(4.0 * self.half_width**2), x)

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
        return self.half_width * (2.0 * u - 1.0)

    def __repr__(self) -> str:
        return f"UniformSquare(half_width={self.half_width})"


class TwoMoons(Target):
    """Two interleaved half circles with Gaussian noise (as ``sklearn.datasets.make_moons``).

    Upper moon ``(cos t, sin t)``, lower moon ``(1 - cos t, 1/2 - sin t)``, ``t ~ U[0, pi]``, plus
    ``N(0, noise^2 I)``, centred by ``-(1/2, 1/4)``. Samples only: the density is a Gaussian blur
    of a curve and has no closed form, so ``log_prob`` raises ``NotImplementedError``.
    """

    name = "two_moons"
    normalized = False
    bounds = (-2.0, 2.0)

    def __init__(self, noise: float = 0.05):
        noise = float(noise)
        if not noise >= 0 or not math.isfinite(noise):
            raise ValueError(f"noise: expected a non-negative finite number, got {noise}")
        self.noise = noise

    def log_prob(self, x: Tensor) -> Tensor:
        raise NotImplementedError(
            "TwoMoons has no closed-form density; use a target with an exact log_prob "
            "(see cflib.targets.TARGETS) or evaluate a model on its samples"
        )

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        t = math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        lower = torch.rand(n, generator=generator, dtype=torch.float64) < 0.5
        upper_x, upper_y = torch.cos(t), torch.sin(t)
        x = torch.where(lower, 1.0 - upper_x, upper_x) - 0.5
        y = torch.where(lower, 0.5 - upper_y, upper_y) - 0.25
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return torch.stack([x, y], dim=-1) + self.noise * noise

    def __repr__(self) -> str:
        return f"TwoMoons(noise={self.noise})"


class _Table:
    """The piecewise-constant density equal to ``exp(log_density)`` at each grid cell's centre.

    ``edges`` holds one increasing float64 grid per axis. ``sample`` draws a cell with probability
    proportional to its mass (midpoint rule), then a point uniformly inside it: the error against
    the true density is of the order of the cell width.
    """

    def __init__(self, log_density: Callable[[Tensor], Tensor], edges: list[Tensor]):
        self.edges = edges
        centres = [0.5 * (e[1:] + e[:-1]) for e in edges]
        grid = torch.stack(torch.meshgrid(*centres, indexing="ij"), dim=-1).reshape(-1, len(edges))
        widths = torch.meshgrid(*[e[1:] - e[:-1] for e in edges], indexing="ij")
        log_mass = log_density(grid) + sum(torch.log(w).reshape(-1) for w in widths)
        self.cdf = torch.cumsum(torch.exp(log_mass - log_mass.max()), dim=0)
        self.shape = tuple(len(c) for c in centres)

    def sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        u = torch.rand(n, generator=generator, dtype=torch.float64) * self.cdf[-1]
        flat = torch.searchsorted(self.cdf, u, right=True).clamp_max(len(self.cdf) - 1)
        index = torch.unravel_index(flat, self.shape)
        lo = torch.stack([e[:-1][i] for e, i in zip(self.edges, index, strict=True)], dim=-1)
        hi = torch.stack([e[1:][i] for e, i in zip(self.edges, index, strict=True)], dim=-1)
        offset = torch.rand(n, len(self.edges), generator=generator, dtype=torch.float64)
        return lo + offset * (hi - lo)


class EnergyTarget(Target):
    r"""A Boltzmann density ``p(x) = exp(-energy(x) / temperature) / Z``, known up to ``Z``.

    ``log_prob(x) = -energy(x) / temperature`` is *unnormalised* (``normalized = False``): it
    differs from ``log p`` by the constant ``log Z = log_normalizer()``. ``sample`` is a reference
    sampler of the tabulated density on a fine grid over ``bounds`` (mass outside is dropped).
    """

    normalized = False
    resolution: int = 1024

    def __init__(self, temperature: float, bounds: tuple[float, float]):
        self.temperature = _positive(temperature, "temperature")
        lo, hi = (float(b) for b in bounds)
        if not lo < hi:
            raise ValueError(f"bounds: expected (lo, hi) with lo < hi, got {bounds}")
        self.bounds = (lo, hi)
        self._table: _Table | None = None

    def energy(self, x: Tensor) -> Tensor:
        """The energy ``U(x)`` for ``x`` of shape ``(batch, 2)``, shape ``(batch,)``."""
        return self._energy(check_event(x, (2,), "x"))

    def _energy(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no energy")

    def _log_prob(self, x: Tensor) -> Tensor:
        return -self._energy(x) / self.temperature

    def _edges(self, resolution: int) -> list[Tensor]:
        edge = torch.linspace(*self.bounds, resolution + 1, dtype=torch.float64)
        return [edge, edge]

    def log_normalizer(self, resolution: int = 2048) -> float:
        """``log Z = log of the integral of exp(-U/T)`` over ``bounds^2`` (midpoint rule, float64)."""
        edges = self._edges(resolution)
        centres = [0.5 * (e[1:] + e[:-1]) for e in edges]
        grid = torch.stack(torch.meshgrid(*centres, indexing="ij"), dim=-1).reshape(-1, 2)
        cell = math.prod(float(e[1] - e[0]) for e in edges)
        return float(torch.logsumexp(self._log_prob(grid), dim=0)) + math.log(cell)

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        if self._table is None:
            self._table = _Table(self._log_prob, self._edges(self.resolution))
        return self._table.sample(n, generator)


class DoubleWell(EnergyTarget):
    r"""The double well of Boltzmann generators (Noé et al., 2019):

    ``U(x) = a/4 x_1^4 - b/2 x_1^2 + c x_1 + d/2 x_2^2``.

    The energy separates, so ``x_2 ~ N(0, T/d)`` is sampled exactly, ``x_1`` from its tabulated
    density on a fine 1-D grid, and ``log_normalizer()`` is a 1-D quadrature plus a Gaussian.
    """

    name = "double_well"

    def __init__(
        self,
        a: float = 1.0,
        b: float = 6.0,
        c: float = 1.0,
        d: float = 1.0,
        temperature: float = 1.0,
        bounds: tuple[float, float] = (-5.0, 5.0),
    ):
        super().__init__(temperature, bounds)
        self.a = _positive(a, "a")
        self.b, self.c = float(b), float(c)
        self.d = _positive(d, "d")
        # x_1 grid: wide enough that the density at its ends is below e^-60 of its peak.
        xs = np.linspace(-1.0, 1.0, 20001) * self._x1_reach()
        log_density = lambda t: -self._energy_x1(t[:, 0]) / self.temperature
        self._x1_table = _Table(log_density, [torch.as_tensor(xs, dtype=torch.float64)])

    def _energy_x1(self, x1: Tensor | np.ndarray) -> Tensor | np.ndarray:
        return self.a / 4 * x1**4 - self.b / 2 * x1**2 + self.c * x1

    def _x1_reach(self) -> float:
        xs = np.linspace(-50.0, 50.0, 200001)
        u = self._energy_x1(xs) / self.temperature
        keep = xs[u - u.min() < 60.0]
        return float(max(-keep.min(), keep.max()))

    def _energy(self, x: Tensor) -> Tensor:
        return self._energy_x1(x[:, 0]) + self.d / 2 * x[:, 1] ** 2

    def log_normalizer(self, resolution: int | None = None) -> float:
        """``log Z``, exact up to quadrature error: ``log int e^{-U_1/T} dx_1 + log sqrt(2 pi T/d)``.

        ``resolution`` is accepted for the common interface and unused (adaptive quadrature).
        """
        reach = self._x1_reach()
        shift = float(np.min(self._energy_x1(np.linspace(-reach, reach, 20001)))) / self.temperature
        density = lambda t: math.exp(-self._energy_x1(t) / self.temperature + shift)
        z1, _ = integrate.quad(density, -reach, reach, limit=200, epsabs=0, epsrel=1e-12)
        gauss = 0.5 * math.log(2.0 * math.pi * self.temperature / self.d)
        return math.log(z1) - shift + gauss

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        x1 = self._x1_table.sample(n, generator)[:, 0]
        x2 = math.sqrt(self.temperature / self.d) * torch.randn(
            n, generator=generator, dtype=torch.float64
        )
        return torch.stack([x1, x2], dim=-1)

    def __repr__(self) -> str:
        return (
            f"DoubleWell(a={self.a}, b={self.b}, c={self.c}, d={self.d}, "
            f"temperature={self.temperature})"
        )


class MuellerBrown(EnergyTarget):
    r"""The Müller-Brown potential (Müller and Brown, 1979), three minima and two saddles:

    ``U(x, y) = sum_k A_k exp(a_k (x - x_k)^2 + b_k (x - x_k)(y - y_k) + c_k (y - y_k)^2)``

    with the standard constants. The global minimum is about -146.7 at (-0.558, 1.442). At the
    default temperature 15 the mass outside ``bounds = (-1.5, 2.0)`` is below 3e-4.
    """

    name = "mueller_brown"
    A = (-200.0, -100.0, -170.0, 15.0)
    a = (-1.0, -1.0, -6.5, 0.7)
    b = (0.0, 0.0, 11.0, 0.6)
    c = (-10.0, -10.0, -6.5, 0.7)
    x0 = (1.0, 0.0, -0.5, -1.0)
    y0 = (0.0, 0.5, 1.5, 1.0)

    def __init__(self, temperature: float = 15.0, bounds: tuple[float, float] = (-1.5, 2.0)):
        super().__init__(temperature, bounds)

    def _energy(self, x: Tensor) -> Tensor:
        amp, a, b, c, x0, y0 = (
            x.new_tensor(v) for v in (self.A, self.a, self.b, self.c, self.x0, self.y0)
        )
        dx, dy = x[:, :1] - x0, x[:, 1:] - y0
        return (amp * torch.exp(a * dx**2 + b * dx * dy + c * dy**2)).sum(dim=-1)

    def __repr__(self) -> str:
        return f"MuellerBrown(temperature={self.temperature}, bounds={self.bounds})"


_REGISTRY: dict[str, type[Target]] = {
    cls.name: cls
    for cls in (
        Checkerboard,
        EightGaussians,
        Rings,
        UniformDisk,
        UniformSquare,
        TwoMoons,
        DoubleWell,
        MuellerBrown,
    )
}
TARGETS: tuple[str, ...] = tuple(_REGISTRY)


def get_target(name: str, **kwargs: object) -> Target:
    """The target called ``name`` (one of ``TARGETS``), built with ``kwargs``."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    key = name.lower().replace("-", "_").replace(" ", "_")
    if key not in _REGISTRY:
        raise ValueError(f"name: unknown target {name!r}; expected one of {', '.join(TARGETS)}")
    return _REGISTRY[key](**kwargs)


def load_digits(
    split: str = "train",
    test_fraction: float = 0.2,
    seed: int = 0,
    return_labels: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Tensor | tuple[Tensor, Tensor]:
    """scikit-learn's 8x8 handwritten digits (1797 images, shipped with the package, no download).

    Returns images of shape ``(N, 1, 8, 8)`` with integer values in ``[0, 16]`` (17 grey levels)
    as ``dtype``, and with ``return_labels`` also the labels ``(N,)`` (int64). The train/test
    split is a fixed random permutation (``seed``): the first ``round(test_fraction * 1797)``
    images are the test set. ``split`` is ``"train"``, ``"test"`` or ``"all"``.
    """
    from sklearn.datasets import load_digits as _sklearn_digits

    if split not in ("train", "test", "all"):
        raise ValueError(f"split: expected 'train', 'test' or 'all', got {split!r}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction}")
    images, labels = _sklearn_digits(return_X_y=True)
    x = torch.as_tensor(images, dtype=dtype).reshape(-1, 1, 8, 8)
    y = torch.as_tensor(labels, dtype=torch.int64)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = round(float(test_fraction) * len(x))
    index = {"test": order[:n_test], "train": order[n_test:], "all": torch.arange(len(x))}[split]
    return (x[index], y[index]) if return_labels else x[index]
