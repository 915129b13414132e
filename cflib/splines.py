r"""Elementwise monotone splines with identity tails: the maps inside spline couplings.

Both splines act on each element of ``x`` separately, are strictly increasing on
:math:`[-B, B]`, map that interval onto itself and are the identity outside it ("linear tails"). Their
parameters are the *unnormalised* outputs of a conditioner network; all-zero parameters give the
identity. Each function returns ``(y, ladj)`` with ``ladj`` elementwise (same shape as ``x``):
:math:`\log|dy/dx|` forward, :math:`\log|dx/dy|` (minus the forward value at the matching point)
inverse.

Implementation (shared by both splines). The bin edges of each axis are kept *unnormalised*: with
:math:`e_i = \exp(r_i - \max_j r_j)` and :math:`S = \sum_i e_i` the normalised bin sizes are

.. math::  m + (1 - K m)\,\mathrm{softmax}(r)_i = \frac{e_i + \beta}{T}, \qquad
           \beta = \frac{m S}{1 - K m}, \qquad T = S + K\beta,

so one cumulative sum :math:`C_j = \sum_{i \le j} (e_i + \beta)` gives every knot up to the factor
:math:`2B/T` (:math:`x_{j+1} = -B + 2B\,C_j / T`), and :math:`C_{K-1} = T` is each row's total.
This is the only work done on all :math:`K` bins (``torch.softmax`` and a normalising pass are
avoided): searching :math:`(x + B)\,T / 2B` in :math:`C` finds the bin, after which only the
selected bin's edges, sizes and slopes are gathered and converted to :math:`[-B, B]` coordinates.
The position in the bin, :math:`(x - x_k) / w_k`, is then formed in the input's own units, so the
round trip loses no more than the rounding of ``x`` itself; it is clamped to :math:`[0, 1]`, as
the search and the knots may disagree by an ulp at a knot (harmless: the map is continuous). Both
directions gather the same bin quantities with the same operations, so they are inverse to each
other up to rounding. Points outside :math:`[-B, B]` are computed on a clamped copy and discarded
with ``torch.where``: the unused branch is finite, so gradients are finite everywhere.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from cflib.validation import check_finite, check_tensor

__all__ = ["piecewise_linear_spline", "rational_quadratic_spline", "split_spline_params"]


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
    shape = x.shape
    x = x.reshape(-1, 1)
    xc = x.clamp(-bound, bound)  # points outside are computed here and discarded in _select
    knots_w = _knots(widths.reshape(-1, num_bins), min_bin_width)
    knots_h = _knots(heights.reshape(-1, num_bins), min_bin_height)
    # Forward searches the input axis (widths), inverse the output axis (heights); the bin
    # quantities below are then computed by the same operations in both directions.
    k, edges, first = _locate(xc, knots_h if inverse else knots_w, bound)
    x_k, w_k = _bin(knots_w, edges, first, bound)
    y_k, h_k = _bin(knots_h, edges, first, bound)
    s = h_k / w_k
    d0, d1 = _interior_slopes(derivatives.reshape(-1, num_bins - 1), k, edges, min_derivative)
    delta = d0 + d1 - 2 * s
    if inverse:
        eta = ((xc - y_k) / h_k).clamp(0.0, 1.0)
        b = d0 - eta * delta
        root = torch.sqrt((d0 * (1 - eta) - d1 * eta).square() + 4 * (s * s) * eta * (1 - eta))
        use_nsf_form = b >= 0
        # Two forms of the same root, each free of cancellation where it is used; the selected
        # denominator is b + root >= root > 0 or 2 (s - b) > 2 s > 0, never zero.
        xi = torch.where(use_nsf_form, 2 * s * eta, root - b) / torch.where(
            use_nsf_form, b + root, 2 * (s - b)
        )
        xi = xi.clamp(0.0, 1.0)  # rounding may leave [0, 1] by an ulp
        t = xi * (1 - xi)
        den = s + delta * t
        out = x_k + w_k * xi
    else:
        xi = ((xc - x_k) / w_k).clamp(0.0, 1.0)
        t = xi * (1 - xi)
        den = s + delta * t
        # (y - y_k) / h = (s xi^2 + d0 t) / den, written as xi (s xi + d0 (1 - xi)) / den: exactly
        # 0 at xi = 0 and exactly 1 at xi = 1 (t = 0, den = s); the clamp guards against an ulp.
        out = y_k + h_k * (xi * (s * xi + d0 * (1 - xi)) / den).clamp(0.0, 1.0)
    # log dy/dx = log(inner) + 2 log(s / den): two logs instead of one of s^2 inner / den^2,
    # so that nothing is squared before the log (den can be ~ the largest slope).
    one_m = 1 - xi
    inner = d1 * xi * xi + 2 * s * t + d0 * one_m * one_m
    ladj = torch.log(inner) + 2 * torch.log(s / den)
    if inverse:
        ladj = -ladj
    return _select(x, out, ladj, bound, shape)


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
    shape = x.shape
    x = x.reshape(-1, 1)
    xc = x.clamp(-bound, bound)  # points outside are computed here and discarded in _select
    knots = _knots(heights.reshape(-1, num_bins), min_bin_height)
    width = 2 * bound / num_bins
    if inverse:
        k, edges, first = _locate(xc, knots, bound)
        y_k, h_k = _bin(knots, edges, first, bound)
        x_k = k.to(x.dtype) * width - bound  # (an integer tensor times a float would be float32)
        out = x_k + width * ((xc - y_k) / h_k).clamp(0.0, 1.0)
    else:
        # Equal widths: the bin is floor(K u), u = (x + B) / 2B; u = 1 belongs to the last bin.
        k_float = ((xc + bound) * (1 / width)).floor_().clamp_(max=num_bins - 1)
        k = k_float.long()
        y_k, h_k = _bin(knots, _edge_indices(k), k == 0, bound)
        x_k = k_float * width - bound
        out = y_k + h_k * ((xc - x_k) * (1 / width)).clamp(0.0, 1.0)
    ladj = torch.log(h_k * (1 / width))
    if inverse:
        ladj = -ladj
    return _select(x, out, ladj, bound, shape)


def _knots(raw: Tensor, min_size: float) -> Tensor:
    r"""Unnormalised cumulative bin edges :math:`C_j = \sum_{i \le j} (e_i + \beta)`, shape (M, K).

    :math:`C / C_{K-1}` are the right edges of bins of sizes :math:`m + (1 - Km)\,\mathrm{softmax}
    (r)`; see the module docstring.
    """
    return _CumulativeBins.apply(raw, min_size / (1 - raw.shape[-1] * min_size))


class _CumulativeBins(torch.autograd.Function):
    r""":math:`C_j = \sum_{i \le j} (e_i + \lambda S)`, :math:`e = \exp(r - \max r)`,
    :math:`S = \sum_i e_i`, with a hand-written backward.

    Why a custom function: for large batches the cost is dominated by allocating (M, K) tensors,
    not by arithmetic. Here the forward allocates one, ``raw - max``, and does ``exp``, ``cumsum``
    and the offsets in place; under plain autograd the in-place ``cumsum`` would overwrite the
    ``exp`` result that autograd keeps, forcing a second allocation. Subtracting the row maximum
    keeps ``exp`` from overflowing for any finite ``raw``; it is a constant shift that the softmax
    does not depend on.
    """

    @staticmethod
    def forward(ctx, raw: Tensor, lam: float) -> Tensor:
        shift = raw.amax(dim=-1, keepdim=True)
        knots = (raw - shift).exp_().cumsum_(dim=-1)
        steps = torch.arange(1, raw.shape[-1] + 1, dtype=raw.dtype, device=raw.device)
        knots.addcmul_(knots[:, -1:] * lam, steps)  # + (j + 1) beta, beta = lam * S
        ctx.save_for_backward(raw, shift, steps)
        ctx.lam = lam
        return knots

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        raw, shift, steps = ctx.saved_tensors
        # dC_j / de_i = [i <= j] + lam (j + 1), so dL/de_i = sum_{j >= i} g_j + lam sum_j (j + 1) g_j
        # (the first sum as total - cumsum + g); de_i / dr_i = e_i (the shift is a constant).
        partial = grad.cumsum(dim=-1)
        outer = partial[:, -1:] + ctx.lam * (grad @ steps).unsqueeze(-1)
        return (raw - shift).exp_().mul_(grad - partial + outer), None


def _locate(x: Tensor, knots: Tensor, bound: float) -> tuple[Tensor, Tensor, Tensor]:
    """Bin ``k`` (M, 1) of each ``x`` in [-B, B] among unnormalised ``knots``, the indices of its
    edges in ``knots`` (M, 2) and ``k == 0``."""
    # x in the knots' units, (x + B) / 2B * total: which bin the rounding picks at a knot does not
    # matter, the map is continuous and the position in the bin is clamped to [0, 1].
    target = (x + bound) * (knots[:, -1:] * (0.5 / bound))
    # right=True counts the edges <= target: the bin index (K only at the upper end).
    k = torch.searchsorted(knots, target, right=True).clamp_(max=knots.shape[-1] - 1)
    return k, _edge_indices(k), k == 0


def _edge_indices(k: Tensor) -> Tensor:
    """Columns ``[k - 1, k]`` of the cumulative sums that bound bin ``k`` (``k - 1`` clamped at 0;
    bin 0 starts at 0, see ``_bin``), shape (M, 2): one gather reads both edges."""
    return torch.cat([(k - 1).clamp_(min=0), k], dim=-1)


def _bin(knots: Tensor, edges: Tensor, first: Tensor, bound: float) -> tuple[Tensor, Tensor]:
    """Left edge and size of bin ``k`` in [-B, B] coordinates; the left edge of bin 0 is -B."""
    scale = (2 * bound) / knots[:, -1:]
    pair = knots.gather(-1, edges)
    left = torch.where(first, 0.0, pair[:, :1])
    return left * scale - bound, (pair[:, 1:] - left) * scale


def _interior_slopes(
    raw: Tensor, k: Tensor, edges: Tensor, min_derivative: float
) -> tuple[Tensor, Tensor]:
    """Slopes at the left and right knots of bin ``k``; 1 at the two ends (the identity tails).

    Only the two gathered raw values go through the softplus. ``raw[..., j]`` is the slope at
    interior knot ``j + 1``, so bin ``k`` reads ``k - 1`` and ``k``: the bin's edge indices, the
    right one clamped to the last column; at the ends the value read is replaced by 1.
    """
    num_interior = raw.shape[-1]
    # Shift so that softplus(0 + shift) = 1 - min_derivative, i.e. raw 0 gives slope 1.
    shift = math.log(math.expm1(1.0 - min_derivative))
    cap = torch.finfo(raw.dtype).max ** 0.25
    pair = raw.gather(-1, edges.clamp(max=num_interior - 1))
    slopes = (F.softplus(pair + shift) + min_derivative).clamp_(max=cap)
    at_ends = torch.cat([k == 0, k == num_interior], dim=-1)
    slopes = torch.where(at_ends, 1.0, slopes)
    return slopes[:, :1], slopes[:, 1:]


def _select(
    x: Tensor, out: Tensor, ladj: Tensor, bound: float, shape: torch.Size
) -> tuple[Tensor, Tensor]:
    """Identity tails: keep the spline's values for |x| < B only (at |x| = B both agree).

    The spline's values are clamped to [-B, B]: the last knot, rebuilt from the gathered edge and
    size, may lie an ulp beyond B, which would make the map step back at the tail.
    """
    inside = x.abs() < bound
    y = torch.where(inside, out.clamp(-bound, bound), x)
    ladj = torch.where(inside, ladj, 0.0)
    return y.reshape(shape), ladj.reshape(shape)


def _check_inputs(
    x: Tensor,
    params: dict[str, tuple[Tensor, int]],
    bound: float,
    min_sizes: dict[str, float],
    min_derivative: float | None,
) -> int:
    """Validate the arguments (cheaply) and return the number of bins K.

    ``params`` maps each parameter's name to ``(tensor, offset)``: its last dimension must be
    ``K + offset``, K being the size of the first one's.
    """
    check_tensor(x, "x")
    num_bins = None
    for name, (p, offset) in params.items():
        check_tensor(p, name)
        if p.dtype != x.dtype:
            raise TypeError(f"{name}: expected dtype {x.dtype} (the dtype of x), got {p.dtype}")
        if p.device != x.device:
            raise ValueError(f"{name}: expected device {x.device} (that of x), got {p.device}")
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
    if not (_is_number(bound) and math.isfinite(bound) and bound > 0):
        raise ValueError(f"bound: expected a finite number > 0, got {bound!r}")
    eps = torch.finfo(x.dtype).eps
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
    # One read-only reduction per tensor and one host sync for all: a sum is non-finite when an
    # element is (or, rarely, when finite elements overflow it; the element-wise test decides).
    tensors = {"x": x, **{name: p for name, (p, _) in params.items()}}
    if not bool(torch.isfinite(torch.stack([t.sum() for t in tensors.values()])).all()):
        for name, t in tensors.items():
            check_finite(t, name)
    return num_bins


def _is_number(value: object) -> bool:
    """A real Python or NumPy scalar (not a bool, not a tensor)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
