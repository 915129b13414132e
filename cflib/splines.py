r"""Elementwise monotone splines with identity tails: the maps inside spline couplings.

Both splines act on each element of ``x`` separately, are strictly increasing on
:math:`[-B, B]`, map that interval onto itself and are the identity outside it ("linear tails"). Their
parameters are the *unnormalised* outputs of a conditioner network; all-zero parameters give the
identity. Each function returns ``(y, ladj)`` with ``ladj`` elementwise (same shape as ``x``):
:math:`\log|dy/dx|` forward, :math:`\log|dx/dy|` (minus the forward value at the matching point)
inverse.

Implementation (shared by both splines).

*Layout.* The work is done "parameter-major": the :math:`P` parameters of :math:`M` elements are a
``(P, M)`` tensor, one contiguous row per parameter. The steps that involve all :math:`K` bins (a
maximum, an exponential, a cumulative sum, the bin search) then combine :math:`K` contiguous rows
element by element, which vectorises; in the natural ``(M, P)`` layout each would be :math:`M`
reductions of length :math:`K`, several times slower because of the per-row overhead. The functions
taking ``(..., K)`` parameters transpose them with one copy each
(:func:`cflib.fast.parameter_major`);
:class:`~cflib.couplings.SplineCoupling` obtains the layout from its conditioner at no cost and
calls :func:`rational_quadratic_spline_packed` directly.

*Bins.* The bin edges of each axis are kept *unnormalised*: with :math:`e_i = \exp(r_i - \max_j
r_j)` and :math:`S = \sum_i e_i` the normalised bin sizes are

.. math::  m + (1 - K m)\,\mathrm{softmax}(r)_i = \frac{e_i + \beta}{T}, \qquad
           \beta = \frac{m S}{1 - K m}, \qquad T = S + K\beta,

so one cumulative sum :math:`C_j = \sum_{i < j} (e_i + \beta)`, :math:`j = 0, \dots, K`, gives every
knot up to the factor :math:`2B/T` (:math:`x_j = -B + 2B\,C_j / T`, exactly :math:`-B` at
:math:`j = 0`), and :math:`C_K = T` is the total. This is the only work done on all :math:`K` bins
(``torch.softmax`` and a normalising pass are avoided). The bin of a point is the number of interior
knots :math:`C_1, \dots, C_{K-1}` at or below :math:`(x + B)\,T / 2B` (a sum of comparisons);
after that only the selected bin's two edges and two slopes are gathered and converted to
:math:`[-B, B]` coordinates. The position in the bin, :math:`(x - x_k) / w_k`, is then formed in the
input's own units, so the round trip loses no more than the rounding of ``x`` itself; it is clamped
to :math:`[0, 1]`, as the search and the knots may disagree by an ulp at a knot (harmless: the map is
continuous). Both directions gather the same bin quantities with the same operations, so they are
inverse to each other up to rounding. Points outside :math:`[-B, B]` are computed on a clamped copy
and discarded with ``torch.where``: the unused branch is finite, so gradients are finite everywhere.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from cflib import fast
from cflib.validation import check_all_finite, check_tensor

#: The default smallest bin width and height (fractions of 2B) and smallest interior slope.
DEFAULT_MIN = 1e-3

__all__ = [
    "piecewise_linear_spline",
    "piecewise_linear_spline_packed",
    "rational_quadratic_spline",
    "rational_quadratic_spline_packed",
    "split_spline_params",
]


def split_spline_params(params: Tensor, num_bins: int) -> tuple[Tensor, Tensor, Tensor]:
    """Split a conditioner output ``(..., 3K - 1)`` into ``widths (..., K)``, ``heights (..., K)``
    and ``derivatives (..., K - 1)`` (views, no copy), in that order."""
    check_tensor(params, "params")
    if not isinstance(num_bins, int) or num_bins < 2:
        raise ValueError(f"num_bins: expected an integer >= 2, got {num_bins!r}")
    k = num_bins
    if params.dim() == 0 or params.shape[-1] != 3 * k - 1:
        raise ValueError(
            f"params: expected a last dimension of size 3 * num_bins - 1 = {3 * k - 1}, "
            f"got shape {tuple(params.shape)}"
        )
    return params[..., :k], params[..., k : 2 * k], params[..., 2 * k :]


def rational_quadratic_spline(
    x: Tensor,
    widths: Tensor,
    heights: Tensor,
    derivatives: Tensor,
    inverse: bool = False,
    bound: float = 3.0,
    min_bin_width: float = 1e-3,
    min_bin_height: float = 1e-3,
    min_derivative: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    r"""Monotone rational-quadratic spline on :math:`[-B, B]`, identity outside (Durkan et al. 2019).

    Parameters (unnormalised, from a conditioner): with :math:`K` bins, ``widths`` and ``heights``
    give bin sizes :math:`w_k, h_k = 2B\,(m + (1 - K m)\,\mathrm{softmax}(\cdot)_k)` (``m`` =
    ``min_bin_width`` or ``min_bin_height``), whose cumulative sums are the knots
    :math:`(x_k, y_k)`, :math:`x_0 = y_0 = -B`, :math:`x_K = y_K = B`. ``derivatives`` give the slopes
    at the :math:`K - 1` interior knots, :math:`\delta_k = m_\delta + \mathrm{softplus}(r_k + c)` with
    :math:`c = \log(e^{1 - m_\delta} - 1)`, so that :math:`r = 0` gives :math:`\delta = 1`; the end
    slopes are :math:`\delta_0 = \delta_K = 1`, matching the identity tails.

    In bin :math:`k`, with :math:`s_k = h_k / w_k`, :math:`\xi = (x - x_k) / w_k \in [0, 1]` and
    :math:`\Delta_k = \delta_{k+1} + \delta_k - 2 s_k`:

    .. math::
        y = y_k + h_k\,\frac{s_k \xi^2 + \delta_k \xi (1 - \xi)}{s_k + \Delta_k \xi (1 - \xi)},
        \qquad
        \frac{dy}{dx} = \frac{s_k^2\,[\delta_{k+1} \xi^2 + 2 s_k \xi (1 - \xi)
                        + \delta_k (1 - \xi)^2]}{[s_k + \Delta_k \xi (1 - \xi)]^2}.

    Inverse: :math:`\xi` is the root in :math:`[0, 1]` of :math:`a \xi^2 + b \xi + c = 0` with

    .. math::
        a = h_k (s_k - \delta_k) + (y - y_k) \Delta_k, \quad
        b = h_k \delta_k - (y - y_k) \Delta_k, \quad
        c = -s_k (y - y_k), \qquad
        \xi = \frac{2c}{-b - \sqrt{b^2 - 4ac}}.

    Numerics: dividing :math:`a, b, c` by :math:`h_k` (with :math:`\eta = (y - y_k)/h_k`) gives :math:`a = s_k - b`
    and the discriminant as a sum of squares,
    :math:`b^2 - 4ac = (\delta_k (1 - \eta) - \delta_{k+1} \eta)^2 + 4 s_k^2 \eta (1 - \eta) > 0`
    (no cancellation, no clamp needed); the root is :math:`2 s_k \eta / (b + \sqrt{\cdot})` when
    :math:`b \ge 0` (the form above) and the equal :math:`(\sqrt{\cdot} - b) / 2a` when :math:`b < 0`,
    so no form ever subtracts nearly equal numbers or divides by zero. Interior slopes are capped at
    the fourth root of the dtype's largest number (``4e9`` in float32), far above any sensible
    value, so that products and squares of slopes cannot overflow.

    Args:
        x: inputs, shape ``(...)``.
        widths, heights: shape ``(..., K)``, ``K >= 2``.
        derivatives: shape ``(..., K - 1)``.
        inverse: compute :math:`x = f^{-1}(y)` (``x`` is then the point ``y``).
        bound: :math:`B > 0`.
        min_bin_width, min_bin_height: smallest bin size as a fraction of :math:`2B`, in
            ``[4 K eps, 1 / K)`` (``eps`` of the dtype).
        min_derivative: smallest interior slope, in ``[eps, 1)``.

    Returns:
        ``(y, ladj)``, both of shape ``x.shape``: :math:`\log|dy/dx|` forward, :math:`\log|dx/dy|`
        inverse.
    """
    num_bins = _check_inputs(
        x,
        {"widths": (widths, 0), "heights": (heights, 0), "derivatives": (derivatives, -1)},
        bound,
        {"min_bin_width": min_bin_width, "min_bin_height": min_bin_height},
        min_derivative,
    )
    k = num_bins
    # One copy into the parameter-major layout: (K, M), (K, M), (K - 1, M).
    raw = fast.parameter_major(
        [widths.reshape(-1, k), heights.reshape(-1, k), derivatives.reshape(-1, k - 1)]
    )
    _check_finite(x, raw, {"widths": widths, "heights": heights, "derivatives": derivatives})
    y, ladj = _rq_spline(
        x.reshape(-1), *raw, inverse, bound, min_bin_width, min_bin_height, min_derivative
    )
    return y.reshape(x.shape), ladj.reshape(x.shape)


def rational_quadratic_spline_packed(
    x: Tensor,
    params: Tensor,
    num_bins: int,
    inverse: bool = False,
    bound: float = 3.0,
    min_bin_width: float = 1e-3,
    min_bin_height: float = 1e-3,
    min_derivative: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    """:func:`rational_quadratic_spline` with parameter-major input (no copy of the parameters).

    Args:
        x: inputs, shape ``(M,)``.
        params: shape ``(3K - 1, M)`` (contiguous is fastest): rows ``0..K-1`` the widths,
            ``K..2K-1`` the heights, ``2K..3K-2`` the interior derivatives of each element.
        num_bins: ``K``. The other arguments as in :func:`rational_quadratic_spline`.

    Returns:
        ``(y, ladj)``, both of shape ``(M,)``.
    """
    _check_packed(x, params, num_bins, 3 * num_bins - 1)
    _check_options(
        x,
        num_bins,
        bound,
        {"min_bin_width": min_bin_width, "min_bin_height": min_bin_height},
        min_derivative,
    )
    check_all_finite({"x": x, "params": params})
    params = params.contiguous()  # the layout the computation is fast in (no copy if it is)
    k = num_bins
    # One split (not three slices): its backward assembles the parameters' gradient in one piece.
    raw_w, raw_h, raw_d = params.split([k, k, k - 1])
    return _rq_spline(
        x, raw_w, raw_h, raw_d, inverse, bound, min_bin_width, min_bin_height, min_derivative
    )


def _rq_spline(
    x: Tensor,
    raw_w: Tensor,
    raw_h: Tensor,
    raw_d: Tensor,
    inverse: bool,
    bound: float,
    min_bin_width: float,
    min_bin_height: float,
    min_derivative: float,
) -> tuple[Tensor, Tensor]:
    """The rational-quadratic spline on validated input: x (M,) and the raw widths, heights and
    derivatives, parameter-major (K, M), (K, M), (K - 1, M), rows contiguous, all of one dtype.
    Half precisions (bfloat16, float16) are computed in float32 and rounded back."""
    out_dtype, x, raw_w, raw_h, raw_d = _upcast(x, raw_w, raw_h, raw_d)
    k = raw_w.shape[0]
    # Cumulative edges of the input and the output axis, (K + 1, M) each.
    knots_w = _knots(raw_w, min_bin_width)
    knots_h = _knots(raw_h, min_bin_height)
    # Forward searches the input axis, inverse the output axis (the search is not differentiated:
    # the index is piecewise constant); both directions then gather the same bin quantities.
    search = (knots_h if inverse else knots_w).detach()
    edges = _locate(x.detach().clamp(-bound, bound), search, bound)
    # The bin's raw knot slopes: raw row j is the slope at interior knot j + 1, so knot e reads row
    # e - 1 (clamped into range; the end knots 0 and K read a dummy and get slope 1).
    raw_slopes = raw_d.gather(0, (edges - 1).clamp(0, k - 2))
    args = (
        x,
        knots_w.gather(0, edges),
        knots_w[k],
        knots_h.gather(0, edges),
        knots_h[k],
        raw_slopes,
        (edges > 0) & (edges < k),  # interior knots; the end knots 0 and K have slope 1
        inverse,
        bound,
        min_derivative,
    )
    y, ladj = fast.RationalQuadraticBin.apply(*args) if fast.active(x) else _rq_bin(*args)[:2]
    return y.to(out_dtype), ladj.to(out_dtype)


def _rq_bin(
    x: Tensor,
    cw: Tensor,
    tw: Tensor,
    ch: Tensor,
    th: Tensor,
    raw: Tensor,
    interior: Tensor,
    inverse: bool,
    bound: float,
    min_derivative: float,
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    r"""The spline inside each element's bin, either direction, and the identity tails.

    Inputs, for M elements: ``x`` (M,); the bin's cumulative edges ``[C_k, C_{k+1}]`` on the input
    and output axes ``cw, ch`` (2, M) and their totals ``tw, th`` (M,); the raw slopes at the bin's
    two knots ``raw`` (2, M) and whether each knot is interior (else an end knot, slope 1),
    ``interior`` (2, M). Returns ``(y, ladj)``, (M,) each, ``y = x`` and ``ladj = 0`` where
    ``|x| >= B``, and the intermediate values that :class:`cflib.fast.RationalQuadraticBin`'s
    backward reuses. Plain differentiable torch code (its in-place steps act on temporaries that
    autograd does not keep), so derivatives of every order are exact.
    """
    # Bin edge and size on each axis, in [-B, B] coordinates: x_k + B = C_k u, u = 2B / T.
    uw, uh = (2 * bound) / tw, (2 * bound) / th
    xk_b, yk_b = cw[0] * uw, ch[0] * uh
    x_k, y_k = xk_b - bound, yk_b - bound
    w, h = (cw[1] - cw[0]) * uw, (ch[1] - ch[0]) * uh
    s = h / w
    # Knot slopes. The softplus is shifted so that raw 0 gives slope 1; slopes are capped at the
    # fourth root of the dtype's largest number (4e9 in float32), far above any sensible value, so
    # that products and squares of slopes cannot overflow.
    z = raw + math.log(math.expm1(1.0 - min_derivative))
    cap = torch.finfo(raw.dtype).max ** 0.25
    slopes = (F.softplus(z) + min_derivative).clamp(max=cap)
    d0, d1 = torch.where(interior, slopes, 1.0)
    delta = (d0 + d1).sub_(s, alpha=2)  # the slopes' Delta_k = d0 + d1 - 2 s
    xc = x.clamp(-bound, bound)  # points outside are computed here and discarded below
    if inverse:
        q = ((xc - y_k) / h).clamp(0.0, 1.0)  # (y - y_k) / h
        b = torch.addcmul(d0, q, delta, value=-1)  # d0 - q delta
        one_mq = 1 - q
        # The discriminant as a sum of squares: (d0 (1 - q) - d1 q)^2 + 4 s^2 q (1 - q).
        root = torch.addcmul(d0 * one_mq, d1, q, value=-1).square()
        root = torch.addcmul(root, s * s, q * one_mq, value=4).sqrt()
        use_nsf_form = b >= 0
        # Two forms of the same root, each free of cancellation where it is used; the selected
        # denominator is b + root >= root > 0 or 2 (s - b) > 2 s > 0, never zero.
        xi = torch.where(use_nsf_form, 2 * s * q, root - b) / torch.where(
            use_nsf_form, b + root, 2 * (s - b)
        )
        xi = xi.clamp(0.0, 1.0)  # rounding may leave [0, 1] by an ulp
        one_m = 1 - xi
        t = xi * one_m
        den = torch.addcmul(s, delta, t)
        out = torch.addcmul(x_k, w, xi)
    else:
        xi = ((xc - x_k) / w).clamp(0.0, 1.0)
        one_m = 1 - xi
        t = xi * one_m
        den = torch.addcmul(s, delta, t)  # s + delta t
        # (y - y_k) / h = (s xi^2 + d0 t) / den, written as xi (s xi + d0 (1 - xi)) / den: exactly
        # 0 at xi = 0 and exactly 1 at xi = 1 (t = 0, den = s); the clamp guards against an ulp.
        q = (torch.addcmul(s * xi, d0, one_m) * xi / den).clamp(0.0, 1.0)
        out = torch.addcmul(y_k, h, q)
    # log dy/dx = log(inner) + 2 log(s / den), inner = d1 xi^2 + 2 s t + d0 (1 - xi)^2: two logs
    # instead of one of s^2 inner / den^2, so that nothing is squared before the log (den can be
    # ~ the largest slope).
    xi2, one_m2 = xi * xi, one_m * one_m
    inner = torch.addcmul(torch.addcmul(d1 * xi2, s, t, value=2), d0, one_m2)
    ladj = torch.log(inner) + 2 * torch.log(s / den)
    if inverse:
        ladj = -ladj
    # Identity tails: keep the spline's values for |x| < B only (at |x| = B both agree). They are
    # clamped to [-B, B]: the last knot, rebuilt from the gathered edge and size, may lie an ulp
    # beyond B, which would make the map step back at the tail.
    inside = x.abs() < bound
    y = torch.where(inside, out.clamp(-bound, bound), x)
    ladj = torch.where(inside, ladj, 0.0)
    saved = (inside, xi, one_m, t, xi2, one_m2, q, s, delta, d0, d1, w, h, uw, uh, xk_b, yk_b,
             den, inner, z)  # fmt: skip
    return y, ladj, saved


def _upcast(*tensors: Tensor) -> tuple:
    """The first tensor's dtype, for the results, then the tensors in the dtype the splines
    compute in (float32 for bfloat16 and float16, whose 8 or 11 bits cannot resolve bins of the
    smallest size)."""
    dtype = tensors[0].dtype
    if dtype in _HALF:
        return dtype, *(t.float() for t in tensors)
    return dtype, *tensors


_HALF = (torch.bfloat16, torch.float16)


def piecewise_linear_spline(
    x: Tensor,
    heights: Tensor,
    inverse: bool = False,
    bound: float = 3.0,
    min_bin_height: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    r"""Monotone piecewise-linear spline on :math:`[-B, B]`, identity outside (Müller et al. 2019).

    :math:`K` equal-width bins; bin probabilities :math:`q = m + (1 - K m)\,\mathrm{softmax}(
    \text{heights})` (``m`` = ``min_bin_height``). With :math:`u = (x + B) / 2B`, bin
    :math:`k = \lfloor K u \rfloor` and :math:`\alpha = K u - k \in [0, 1]`:

    .. math::
        y = -B + 2B\,\Big(\sum_{j < k} q_j + \alpha\, q_k\Big), \qquad
        \frac{dy}{dx} = K q_k, \qquad \log\Big|\frac{dx}{dy}\Big| = -\log(K q_k).

    The inverse finds the bin of :math:`v = (y + B) / 2B` among the cumulative sums of :math:`q`,
    then :math:`\alpha = (v - \sum_{j<k} q_j) / q_k` and :math:`x = -B + 2B (k + \alpha) / K`. The map
    is continuous but its derivative jumps at the knots; all-zero heights give the identity.

    Args:
        x: inputs, shape ``(...)``.
        heights: unnormalised bin heights, shape ``(..., K)``, ``K >= 2``.
        inverse: compute :math:`x = f^{-1}(y)` (``x`` is then the point ``y``).
        bound: :math:`B > 0`.
        min_bin_height: smallest bin probability, in ``[4 K eps, 1 / K)``.

    Returns:
        ``(y, ladj)``, both of shape ``x.shape``.
    """
    num_bins = _check_inputs(
        x, {"heights": (heights, 0)}, bound, {"min_bin_height": min_bin_height}, None
    )
    (params,) = fast.parameter_major([heights.reshape(-1, num_bins)])  # (K, M), one copy
    _check_finite(x, [params], {"heights": heights})
    y, ladj = _pl_spline(x.reshape(-1), params, inverse, bound, min_bin_height)
    return y.reshape(x.shape), ladj.reshape(x.shape)


def piecewise_linear_spline_packed(
    x: Tensor,
    params: Tensor,
    inverse: bool = False,
    bound: float = 3.0,
    min_bin_height: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    """:func:`piecewise_linear_spline` with parameter-major input: ``x`` of shape ``(M,)``,
    ``params`` (the unnormalised heights) of shape ``(K, M)`` (contiguous is fastest); returns
    ``(M,)`` tensors."""
    num_bins = params.shape[0] if params.dim() == 2 else 0
    _check_packed(x, params, num_bins, num_bins)
    _check_options(x, num_bins, bound, {"min_bin_height": min_bin_height}, None)
    check_all_finite({"x": x, "params": params})
    return _pl_spline(x, params.contiguous(), inverse, bound, min_bin_height)


def _pl_spline(
    x: Tensor, params: Tensor, inverse: bool, bound: float, min_bin_height: float
) -> tuple[Tensor, Tensor]:
    """The piecewise-linear spline on validated parameter-major input: x (M,), params (K, M), both
    of one dtype. Half precisions (bfloat16, float16) are computed in float32 and rounded back."""
    out_dtype, x, params = _upcast(x, params)
    num_bins = params.shape[0]
    xc = x.clamp(-bound, bound)  # points outside are computed here and discarded in _select
    knots = _knots(params, min_bin_height)  # (K + 1, M): the output axis
    width = 2 * bound / num_bins
    if inverse:
        edges = _locate(xc, knots, bound)
        y_k, h_k = _bin(knots, edges, bound)
        x_k = edges[0].to(x.dtype) * width - bound  # (an integer tensor times a float is float32)
        out = x_k + width * ((xc - y_k) / h_k).clamp(0.0, 1.0)
    else:
        # Equal widths: the bin is floor(K u), u = (x + B) / 2B; u = 1 belongs to the last bin.
        k_float = ((xc + bound) * (1 / width)).floor().clamp(max=num_bins - 1)
        k = k_float.long()
        y_k, h_k = _bin(knots, torch.stack([k, k + 1]), bound)
        x_k = k_float * width - bound
        out = y_k + h_k * ((xc - x_k) * (1 / width)).clamp(0.0, 1.0)
    ladj = torch.log(h_k * (1 / width))
    if inverse:
        ladj = -ladj
    y, ladj = _select(x, out, ladj, bound)
    return y.to(out_dtype), ladj.to(out_dtype)


def _knots(raw: Tensor, min_size: float) -> Tensor:
    r"""Unnormalised cumulative bin edges :math:`C_j = \sum_{i < j} (e_i + \beta)`, shape
    (K + 1, M), from raw bin sizes ``raw`` (K, M) with smallest size ``min_size``.

    :math:`C / C_K` are the edges of bins of sizes :math:`m + (1 - Km)\,\mathrm{softmax}(r)`; see
    the module docstring. (The two axes of the rational-quadratic spline are done in two calls:
    one buffer for both would exceed, for large batches, the size above which the C allocator
    returns memory to the system, and every call would then pay to map fresh pages.)
    """
    lam = min_size / (1 - raw.shape[0] * min_size)
    return fast.CumulativeBins.apply(raw, lam) if fast.active(raw) else _cumulative_bins(raw, lam)


def _cumulative_bins(raw: Tensor, lam: float) -> Tensor:
    r""":math:`C_j = \sum_{i < j} (e_i + \lambda S)`, :math:`j = 0, \dots, K`, along dimension 0,
    with :math:`e = \exp(r - \max r)` and :math:`S = \sum_i e_i`: (K + 1, M) from (K, M).

    Subtracting the maximum keeps ``exp`` from overflowing for any finite ``raw``; it is a constant
    shift that the softmax does not depend on, and every use of the edges is a ratio ``C / C_K``,
    which does not depend on it either, so it is treated as a constant (detached)."""
    e = torch.exp(raw - raw.detach().amax(dim=0))
    beta = lam * e.sum(dim=0)
    # The cumulative sum row by row (torch.compile fuses these additions; it runs a cumsum as a
    # separate call), as CumulativeBins computes it: C_j = (e_0 + ... + e_{j-1}) + j beta.
    partial, knots = torch.zeros_like(beta), [torch.zeros_like(beta)]
    for j in range(raw.shape[0]):
        partial = partial + e[j]
        knots.append(partial + (j + 1) * beta)
    return torch.stack(knots)


def _locate(x: Tensor, knots: Tensor, bound: float) -> Tensor:
    """Rows ``[k, k + 1]`` of the cumulative edges ``knots`` (K + 1, M) that bound the bin ``k`` of
    each ``x`` (M,) in [-B, B], shape (2, M)."""
    k = knots.shape[0] - 1
    # x in the knots' units, (x + B) / 2B * total: which bin the rounding picks at a knot does not
    # matter, the map is continuous and the position in the bin is clamped to [0, 1].
    target = (x + bound) * (knots[k] * (0.5 / bound))
    # The bin is the number of interior knots at or below the target: 0..K-1, K - 1 at x = B.
    # (Summed in uint8 where the count and the count + 1 fit: the narrowest sum was the fastest
    # we measured, ahead of int32 and of row-by-row counting; gather wants int64 indices.)
    count = torch.uint8 if k < 256 else torch.int32
    b = torch.sum(knots[1:k] <= target, dim=0, dtype=count)
    return torch.stack([b, b + 1]).long()


def _bin(knots: Tensor, edges: Tensor, bound: float) -> tuple[Tensor, Tensor]:
    """Left edge and size, in [-B, B] coordinates, of the bins whose edge rows in ``knots``
    (K + 1, M) are ``edges`` (2, M): two (M,) tensors, one gather."""
    left, right = knots.gather(0, edges)
    scale = (2 * bound) / knots[-1]
    return left * scale - bound, (right - left) * scale


def _select(x: Tensor, out: Tensor, ladj: Tensor, bound: float) -> tuple[Tensor, Tensor]:
    """Identity tails: keep the spline's values for |x| < B only (at |x| = B both agree).

    The spline's values are clamped to [-B, B]: the last knot, rebuilt from the gathered edge and
    size, may lie an ulp beyond B, which would make the map step back at the tail.
    """
    inside = x.abs() < bound
    return torch.where(inside, out.clamp(-bound, bound), x), torch.where(inside, ladj, 0.0)


def _check_inputs(
    x: Tensor,
    params: dict[str, tuple[Tensor, int]],
    bound: float,
    min_sizes: dict[str, float],
    min_derivative: float | None,
) -> int:
    """Validate the arguments' types, shapes and options (not their values: see
    :func:`_check_finite`) and return the number of bins K.

    ``params`` maps each parameter's name to ``(tensor, offset)``: its last dimension must be
    ``K + offset``, K being the size of the first one's.
    """
    check_tensor(x, "x")
    num_bins = None
    for name, (p, offset) in params.items():
        _check_like(p, x, name)
        if p.dim() != x.dim() + 1 or p.shape[:-1] != x.shape:
            raise ValueError(
                f"{name}: expected shape {(*x.shape, 'K' if offset == 0 else 'K - 1')} for x of "
                f"shape {tuple(x.shape)}, got {tuple(p.shape)}"
            )
        if num_bins is None:
            num_bins = p.shape[-1]
            if num_bins < 2:
                raise ValueError(
                    f"{name}: expected at least 2 bins (last dim >= 2), got {num_bins}"
                )
        elif p.shape[-1] != num_bins + offset:
            raise ValueError(
                f"{name}: expected last dimension {num_bins + offset} (K = {num_bins} bins), "
                f"got {p.shape[-1]}"
            )
    _check_options(x, num_bins, bound, min_sizes, min_derivative)
    return num_bins


def _check_finite(x: Tensor, params: Sequence[Tensor], named: dict[str, Tensor]) -> None:
    """Check that ``x`` and ``params``, the parameter-major copies of the arguments ``named``, are
    finite (contiguous rows sum several times faster than the arguments' strided columns); an
    error names the argument."""
    try:
        check_all_finite({"x": x, **{f"params[{i}]": p for i, p in enumerate(params)}})
    except ValueError:
        check_all_finite({"x": x, **named})
        raise


def _check_like(p: Tensor, x: Tensor, name: str) -> None:
    check_tensor(p, name)
    if p.dtype != x.dtype:
        raise TypeError(f"{name}: expected dtype {x.dtype} (the dtype of x), got {p.dtype}")
    if p.device != x.device:
        raise ValueError(f"{name}: expected device {x.device} (that of x), got {p.device}")


def _check_packed(x: Tensor, params: Tensor, num_bins: int, rows: int) -> None:
    """Shapes of the parameter-major functions' input: x (M,), params (rows, M)."""
    check_tensor(x, "x")
    _check_like(params, x, "params")
    if not isinstance(num_bins, int) or num_bins < 2:
        raise ValueError(f"num_bins: expected an integer >= 2, got {num_bins!r}")
    if x.dim() != 1 or params.shape != (rows, x.shape[0]):
        raise ValueError(
            f"params: expected shape ({rows}, M) for x of shape (M,), "
            f"got params {tuple(params.shape)} and x {tuple(x.shape)}"
        )


def _check_options(
    x: Tensor,
    num_bins: int,
    bound: float,
    min_sizes: dict[str, float],
    min_derivative: float | None,
) -> None:
    """The bound and the smallest bin sizes and slope, for K bins in x's dtype."""
    if not (_is_number(bound) and math.isfinite(bound) and bound > 0):
        raise ValueError(f"bound: expected a finite number > 0, got {bound!r}")
    eps = torch.finfo(torch.float32 if x.dtype in _HALF else x.dtype).eps  # the compute dtype
    # Knots carry an absolute error of about K eps (a sum of K terms); a bin at least 4 K eps wide
    # keeps a positive width, so no division by zero can occur.
    for name, m in min_sizes.items():
        if not (_is_number(m) and 4 * num_bins * eps <= m and m * num_bins < 1):
            raise ValueError(
                f"{name}: expected a number in [4 K eps, 1 / K) = [{4 * num_bins * eps:.3g}, "
                f"{1 / num_bins:.3g}) for K = {num_bins} bins in {x.dtype}, got {m!r}"
            )
    if min_derivative is not None and not (
        _is_number(min_derivative) and eps <= min_derivative < 1
    ):
        raise ValueError(
            f"min_derivative: expected a number in [eps, 1) = [{eps:.3g}, 1) for {x.dtype}, "
            f"got {min_derivative!r}"
        )


def _is_number(value: object) -> bool:
    """A real Python or NumPy scalar (not a bool, not a tensor)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
