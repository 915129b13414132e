r"""The performance machinery behind the couplings and splines: what it does, and when it steps aside.

The couplings (:mod:`cflib.couplings`) and splines (:mod:`cflib.splines`) are written as plain torch
code: every formula of the book, in differentiable operations, so that autograd, ``torch.func``,
``torch.compile``, ``torch.export`` and autocast see ordinary tensors. This module holds three
hand-written :class:`torch.autograd.Function` s that compute some of those pieces faster in eager
mode, and the rule that decides when they are used.

*Layout.* A spline coupling's parameters are handled "parameter-major": the :math:`P` parameters of
:math:`M` transformed elements form a ``(P, M)`` tensor, one contiguous row per parameter (see
:mod:`cflib.splines`). When the conditioner is an ``nn.Sequential`` of ``nn.Linear`` layers with
``nn.ReLU`` between them (as :class:`~cflib.conditioners.MLP` is by default), :func:`relu_mlp_packed`
evaluates it as one function, :class:`ReluMLP`, with the rows of the last layer reordered so that
the matrix product writes this layout directly; any other conditioner's output is transposed with
one copy. The functional splines, given element-major parameters, copy them with
:func:`parameter_major`, a block of elements at a time.

*Functions.* :class:`ReluMLP` (the network), :class:`CumulativeBins` (the bin edges of a spline) and
:class:`RationalQuadraticBin` (the spline inside each element's bin) do in place what autograd
would allocate for, keep only what their backward needs, and have hand-written first derivatives.
At training batch sizes the fixed cost of allocating and recording each operation, not the
arithmetic, dominates, which is what they save. For the same reason they are called through
torch's C++ entry point (:class:`_Function`), not through the Python layer of
``Function.apply``.

*When they step aside.* :func:`active` says whether they may be used; otherwise the plain code
runs. They are used only in eager mode with plain autograd, in float32 or float64: not while
``torch.compile`` or ``torch.export`` traces (the compiler fuses the plain code better), not inside
a ``torch.func`` transform (``vmap``, ``grad``, ``jacrev``, ``jacfwd``: the plain code has every
rule they need), and not under autocast (the plain code follows autocast's casting rules).

*Derivatives of every order.* A first derivative (``loss.backward()``) uses the hand-written
backward. When a backward itself is recorded (``create_graph=True``: Hessians, score penalties,
gradient penalties, or a ``torch.func`` transform over ``autograd.grad``), the backward instead
recomputes the plain code from the saved inputs and differentiates it with autograd, so that
higher derivatives are exact, as if no custom function had been used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules import module as _module_globals

__all__ = [
    "CumulativeBins",
    "RationalQuadraticBin",
    "ReluMLP",
    "active",
    "cat_rows",
    "parameter_major",
    "relu_mlp_packed",
]

_FAST_DTYPES = (torch.float32, torch.float64)


def active(*tensors: Tensor) -> bool:
    """Whether the hand-written functions may be used for ``tensors`` (see the module docstring)."""
    if torch.compiler.is_compiling() or torch._C._functorch.peek_interpreter_stack() is not None:
        return False
    for t in tensors:
        if t.dtype not in _FAST_DTYPES or torch.is_autocast_enabled(t.device.type):
            return False
    return True


def _recorded() -> bool:
    """Whether a backward is being recorded (``create_graph=True``) by plain autograd. (Under a
    ``torch.func`` transform, which calls these functions only when a user applies them directly,
    the hand-written backward runs: it supports ``vmap`` and first derivatives.)"""
    return torch.is_grad_enabled() and torch._C._functorch.peek_interpreter_stack() is None


def _recompute_grads(
    plain: Callable[..., tuple[Tensor, ...]],
    inputs: Sequence[Tensor | None],
    needs: Sequence[bool],
    grads: Sequence[Tensor | None],
) -> list[Tensor | None]:
    """Differentiable gradients of ``plain(*inputs)`` (the plain code) with respect to the inputs
    that ``needs`` marks, for a backward that is itself recorded (``create_graph=True``)."""
    with torch.enable_grad():
        outputs = plain(*inputs)
        pairs = [(o, g) for o, g in zip(outputs, grads, strict=False) if g is not None]
        wanted = [t for t, n in zip(inputs, needs, strict=True) if n]
        found = torch.autograd.grad(
            [o for o, _ in pairs],
            wanted,
            [g for _, g in pairs],
            create_graph=True,
            allow_unused=True,
            materialize_grads=True,
        )
    it = iter(found)
    return [next(it) if n else None for n in needs]


class _Function(torch.autograd.Function):
    """An autograd Function whose ``apply`` skips, outside ``torch.func`` transforms, the Python
    layer of :meth:`torch.autograd.Function.apply`: for a Function with ``setup_context`` it binds
    the default arguments with ``inspect.signature`` on every call, about 0.1 ms, some 7 % of a
    training step of eight spline couplings on 4,096 points. Every argument must therefore be
    given."""

    @classmethod
    def apply(cls, *args):  # type: ignore[override]
        if torch._C._are_functorch_transforms_active():
            return super().apply(*args)
        return super(torch.autograd.Function, cls).apply(*args)


# ---------------------------------------------------------------- the ReLU conditioner

_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def relu_mlp(net: nn.Module, n_out: int) -> list[nn.Linear] | None:
    """The linear layers of ``net`` if :class:`ReluMLP` may evaluate it, else ``None``: a plain
    ``nn.Sequential`` alternating ``nn.Linear`` and ``nn.ReLU`` layers, ending in an ``nn.Linear``
    with ``n_out`` outputs, and no hooks on it, on its layers or global ones (they would not be
    called)."""
    if type(net).forward is not nn.Sequential.forward or len(net) % 2 == 0:
        return None
    layers = list(net)
    if any(type(m) is not (nn.Linear, nn.ReLU)[i % 2] for i, m in enumerate(layers)):
        return None
    if layers[-1].out_features != n_out:
        return None
    if any(getattr(_module_globals, f"_global{name}", None) for name in _HOOKS):
        return None
    if any(getattr(m, name) for m in (net, *layers) for name in _HOOKS):
        return None
    return layers[0::2]


def relu_mlp_packed(net: nn.Module, cond: Tensor, n_b: int, p: int) -> Tensor | None:
    """The conditioner's output in the parameter-major layout ``(p, n_b * batch)``, column
    ``j * batch + i`` for transformed dimension ``j`` of sample ``i``, computed by
    :class:`ReluMLP`, or where that steps aside (see :func:`active`) by the same operations in
    plain torch; ``None`` when ``net`` is not such a network (see :func:`relu_mlp`)."""
    linears = relu_mlp(net, n_b * p)
    if linears is None:
        return None
    # The head's output rows are ordered (dimension, parameter); reorder them to (parameter,
    # dimension) (nothing to do for one dimension), so that the network's transposed output,
    # (p * n_b, batch), is parameter-major.
    *hidden, head = linears
    w, b = head.weight, head.bias
    if n_b > 1:
        w = w.view(n_b, p, -1).transpose(0, 1).reshape(p * n_b, -1)
        b = None if b is None else b.view(n_b, p).T.reshape(p * n_b)
    params = [t for layer in hidden for t in (layer.weight, layer.bias)] + [w, b]
    if active(cond, linears[0].weight):
        out = ReluMLP.apply(cond, *params)
    else:  # the same layout from plain operations (compiled, traced, under autocast or torch.func)
        (out,) = _relu_mlp_plain(cond, *params)
    return out.view(p, n_b * cond.shape[0])


def _linear(h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``h W^T + b``, (batch, out). With one input feature the product is an outer product, which
    a broadcast multiply computes several times faster than a matrix-product routine."""
    if weight.shape[1] == 1:
        return h * weight.T if bias is None else torch.addcmul(bias, h, weight.T)
    return h @ weight.T if bias is None else torch.addmm(bias, h, weight.T)


def _relu_mlp_plain(x: Tensor, *params: Tensor | None) -> tuple[Tensor]:
    """What :class:`ReluMLP` computes, in plain differentiable operations."""
    weights, biases = params[0::2], params[1::2]
    h = x
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        h = F.linear(h, w, b).relu()
    w, b = weights[-1], biases[-1]
    return (w @ h.T if b is None else torch.addmm(b.unsqueeze(1), w, h.T),)


def _relu_backward_(grad: Tensor, out: Tensor) -> Tensor:
    """The gradient through a ReLU with output ``out``, written into ``grad`` (which must be a
    fresh tensor): ``grad * [out > 0]``, with no new tensor. (A boolean mask with ``masked_fill_``
    or ``mul_`` is ten to thirty times slower.) Under ``vmap`` (as in ``jacobian(...,
    vectorize=True)``), which has no rule for the ``out=`` form, a new tensor."""
    try:
        return torch.ops.aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)
    except RuntimeError:
        return torch.ops.aten.threshold_backward(grad, out, 0)


class ReluMLP(_Function):
    r"""A ReLU network with its output transposed, and a hand-written backward.

    Inputs: ``x`` (batch, in), then a weight (out, in) and a bias (out,) or ``None`` per linear
    layer. With :math:`h_0 = x`, hidden layers :math:`h_l = \mathrm{relu}(h_{l-1} W_l^\top + b_l)`
    (batch, width) for :math:`l < L`, it returns :math:`o = W_L h_{L-1}^\top + b_L` (out, batch):
    the ``nn.Sequential``'s output, transposed, in the parameter-major layout.

    Backward, from :math:`g = \partial\ell/\partial o` (out, batch): :math:`\partial W_L = g\,h_{L-1}`,
    :math:`\partial b_L = g \mathbf{1}`, :math:`\partial h_{L-1} = g^\top W_L`; then for
    :math:`l = L-1, \dots, 1`: :math:`\bar g = \partial h_l \odot [h_l > 0]`,
    :math:`\partial W_l = \bar g^\top h_{l-1}`, :math:`\partial b_l = \bar g^\top \mathbf{1}`,
    :math:`\partial h_{l-1} = \bar g\,W_l`.

    Each ReLU acts in place on the fresh output of its linear layer, and each hidden gradient, a
    fresh product computed here, is masked in place, so that the network allocates one tensor per
    hidden layer in each direction (autograd's ReLU allocates one more each way). Every gradient
    also keeps its layer's memory layout, (batch, width): under autograd, the transposed head would
    pass the last hidden layer a transposed gradient, and an elementwise backward on mismatched
    layouts is many times slower.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, *params: Tensor | None) -> tuple[Tensor, ...]:
        weights, biases = params[0::2], params[1::2]
        hidden = [x]
        for w, b in zip(weights[:-1], biases[:-1], strict=True):
            hidden.append(_linear(hidden[-1], w, b).relu_())
        w, b, h = weights[-1], biases[-1], hidden[-1]
        out = w @ h.T if b is None else torch.addmm(b.unsqueeze(1), w, h.T)
        return out, *hidden[1:]

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: tuple[Tensor, ...]) -> None:
        x, *params = inputs
        ctx.save_for_backward(x, *params, *output[1:])
        ctx.n_params = len(params)
        ctx.mark_non_differentiable(*output[1:])
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, grad: Tensor | None, *_: Tensor | None) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors
        inputs, hidden = saved[: 1 + ctx.n_params], saved[1 + ctx.n_params :]
        needs = ctx.needs_input_grad[: 1 + ctx.n_params]
        if grad is None:
            return (None,) * len(inputs)
        if _recorded():  # a recorded backward: differentiate the plain code
            return tuple(_recompute_grads(_relu_mlp_plain, inputs, needs, [grad]))
        x, params = inputs[0], inputs[1:]
        weights, has_bias = params[0::2], [b is not None for b in params[1::2]]
        hidden = (x, *hidden)
        n = len(weights)
        grads: list[Tensor | None] = [None] * (2 * n)
        g = grad.T  # (batch, out): the same formulas for every layer from here on
        for i in reversed(range(n)):
            if i < n - 1:
                g = _relu_backward_(g, hidden[i + 1])
            if needs[1 + 2 * i]:
                grads[2 * i] = g.T @ hidden[i]
            if needs[2 + 2 * i] and has_bias[i]:
                grads[2 * i + 1] = g.sum(0)
            g = g @ weights[i] if i > 0 or needs[0] else None
        return g, *grads

    @classmethod
    def apply(cls, x: Tensor, *params: Tensor | None) -> Tensor:  # type: ignore[override]
        """The network's transposed output (out, batch) (the hidden layers are kept internally)."""
        return super().apply(x, *params)[0]


# ---------------------------------------------------------------- the parameter-major copy

#: Rows of the element-major input copied at a time by :func:`parameter_major`: a block of
#: 8,192 elements' parameters (0.75 MB for 23 float32 parameters) stays in cache while it is
#: written out as rows.
_BLOCK = 8192


def parameter_major(pieces: Sequence[Tensor]) -> list[Tensor]:
    """The parameters of ``M`` elements, given element-major as ``pieces`` of shapes ``(M, P_i)``,
    parameter-major: a contiguous ``(P_i, M)`` copy of each piece (its transpose).

    On a CPU in eager mode, without gradients, the copy is done a block of :data:`_BLOCK`
    elements at a time, with all threads of torch's elementwise copy. A transposing ``contiguous()`` of a
    piece that is a slice of a wider tensor reads the whole tensor again for each of its columns
    once it no longer fits in cache, 2-3 times slower at a million elements. (One tensor per piece,
    not one for all: a single buffer of 23 rows of a million elements would exceed the size above
    which the C allocator returns memory to the system, and every call would then pay to map fresh
    pages.) Otherwise (with gradients, traced, or on an accelerator, where one kernel is best) it
    is ``p.T.contiguous()``, which autograd and the compiler know.
    """
    plain = torch.is_grad_enabled() and any(p.requires_grad for p in pieces)
    if plain or pieces[0].device.type != "cpu" or not active(*pieces):
        return [p.T.contiguous() for p in pieces]
    outs = [p.new_empty(p.shape[1], p.shape[0]) for p in pieces]
    m = pieces[0].shape[0]
    for start in range(0, m, _BLOCK):
        for p, out in zip(pieces, outs, strict=True):
            out[:, start : start + _BLOCK].copy_(p[start : start + _BLOCK].T)
    return outs


def cat_rows(first: Tensor, rows: Tensor) -> Tensor:
    """``torch.cat([first, rows.T], dim=1)``: a coupling's output from its unchanged columns
    ``first`` (batch, k) and its transformed part as rows ``rows`` (n - k, batch).

    While ``torch.compile`` traces, it is written as the transpose of a cat of rows. The compiler
    would otherwise compute the spline a second time, column by column, inside the cat: measured
    53 ms against 37 ms for the spline and output of a 16-dimensional layer at 65,536 points. In
    eager mode that form would cost an extra copy (7.9 ms against 1.6 ms there).
    """
    if torch.compiler.is_compiling():
        return torch.cat([first.T, rows]).T.contiguous()
    return torch.cat([first, rows.T], dim=1)


# ---------------------------------------------------------------- the spline's bin edges


class CumulativeBins(_Function):
    r"""The spline's cumulative bin edges (:func:`cflib.splines._cumulative_bins`) with a
    hand-written backward.

    The forward allocates one tensor, the output, and writes ``raw - max`` into it, then does
    ``exp``, ``cumsum`` and the offsets in place; under plain autograd the in-place ``cumsum``
    would overwrite the ``exp`` result that autograd keeps, forcing more allocations.

    Backward: :math:`\partial C_j / \partial e_i = [i < j] + \lambda j` (:math:`j = 1, \dots, K`), so
    :math:`\partial\ell/\partial e_i = \sum_{j > i} g_j + \lambda \sum_j j g_j`, and
    :math:`\partial e_i / \partial r_i = e_i`.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(raw: Tensor, lam: float) -> Tensor:
        k, m = raw.shape
        knots = raw.new_empty(k + 1, m)
        knots[0] = 0  # C_0 = 0: the left edge of bin 0, so that no bin needs a special case
        inner = torch.sub(raw, raw.amax(dim=0), out=knots[1:]).exp_()
        for j in range(1, k):  # the cumulative sum row by row: several times faster than cumsum_
            inner[j].add_(inner[j - 1])
        steps = torch.arange(1, k + 1, dtype=raw.dtype, device=raw.device).unsqueeze(-1)
        inner.addcmul_(knots[k] * lam, steps)  # C_j += j beta, beta = lam * S
        return knots

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: Tensor) -> None:
        ctx.save_for_backward(inputs[0])
        ctx.lam = inputs[1]

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None]:
        (raw,) = ctx.saved_tensors
        if _recorded():  # a recorded backward: differentiate the plain code
            from cflib.splines import _cumulative_bins

            plain = lambda r: (_cumulative_bins(r, ctx.lam),)
            return _recompute_grads(plain, [raw], [True], [grad])[0], None
        grad = grad[1:]  # C_0 is a constant
        steps = torch.arange(1, raw.shape[0] + 1, dtype=raw.dtype, device=raw.device).unsqueeze(-1)
        partial = grad.cumsum(dim=0)
        outer = partial[-1] + ctx.lam * (grad * steps).sum(dim=0)
        return (grad - partial + outer).mul_((raw - raw.amax(dim=0)).exp_()), None


# ---------------------------------------------------------------- the spline inside its bin


class RationalQuadraticBin(_Function):
    r"""The rational-quadratic spline inside each element's bin and the identity tails
    (:func:`cflib.splines._rq_bin`, which it runs and whose intermediate values it keeps), with a
    hand-written backward.

    Why: these are some 50 (forward) to 70 (inverse) elementwise operations on (M,) tensors, and
    for the batch sizes of training the fixed overhead of each, not the arithmetic, is the cost.
    Under autograd every one of them would record a node and have its own backward; here none is
    recorded, and the backward reuses the forward's intermediate values in about 70 fused
    operations for either direction.

    Backward. In the bin, with :math:`w, h` its size, :math:`s = h / w`, :math:`t = \xi (1 - \xi)`
    and ``den``, ``inner`` as in :func:`cflib.splines.rational_quadratic_spline`, write the spline
    as :math:`y = y_k + h\,q(\xi; s, \delta_k, \delta_{k+1})` and
    :math:`L = \log(dy/dx) = \log \mathrm{inner} + 2 \log s - 2 \log \mathrm{den}`. Their
    partial derivatives (``p_*`` for :math:`h\,q`, ``l_*`` for :math:`L`) are

    .. math::
        h q_\xi = \frac{h s\,\mathrm{inner}}{\mathrm{den}^2}, \quad
        h q_s = \frac{h (\xi^2 - q (1 - 2t))}{\mathrm{den}}, \quad
        h q_{\delta_k} = \frac{h t (1 - q)}{\mathrm{den}}, \quad
        h q_{\delta_{k+1}} = -\frac{h q t}{\mathrm{den}},

        L_\xi = \frac{2 (\delta_{k+1} \xi + s (1 - 2\xi) - \delta_k (1 - \xi))}{\mathrm{inner}}
                 - \frac{2 \Delta_k (1 - 2\xi)}{\mathrm{den}}, \quad
        L_s = \frac{2t}{\mathrm{inner}} + \frac{2}{s} - \frac{2 (1 - 2t)}{\mathrm{den}}, \quad
        L_{\delta_k} = \frac{(1 - \xi)^2}{\mathrm{inner}} - \frac{2t}{\mathrm{den}}, \quad
        L_{\delta_{k+1}} = \frac{\xi^2}{\mathrm{inner}} - \frac{2t}{\mathrm{den}}.

    Forward direction: :math:`\xi = (x - x_k)/w` and :math:`s = h/w` carry the gradients to
    :math:`x, x_k, w, h`. Inverse direction: :math:`\xi` solves :math:`y_k + h q(\xi) = y`, so
    by implicit differentiation :math:`d\xi = (dy - dy_k - q\,dh - h q_s\,ds - \dots) / (h
    q_\xi)`, and the output is :math:`x = x_k + w \xi` with :math:`\mathrm{ladj} = -L`. The
    bin edges are :math:`x_k = -B + 2B C_k / T`, :math:`w = 2B (C_{k+1} - C_k) / T` (likewise on
    the output axis), and a slope is :math:`\min(m + \mathrm{softplus}(r + c), \mathrm{cap})`
    (1 at an end knot). The clamps that only guard against an ulp of rounding, and the slope cap
    that only absurd raw values reach, are treated as the identity. Checked against the plain
    code's autograd gradients and finite differences in the tests.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(
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
    ) -> tuple[Tensor, ...]:
        from cflib.splines import _rq_bin

        y, ladj, saved = _rq_bin(x, cw, tw, ch, th, raw, interior, inverse, bound, min_derivative)
        return y, ladj, *saved

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: tuple[Tensor, ...]) -> None:
        ctx.save_for_backward(*inputs[:7], *output[2:])
        ctx.options = inputs[7:]
        ctx.mark_non_differentiable(*output[2:])
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(
        ctx, grad_y: Tensor | None, grad_ladj: Tensor | None, *_: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors
        inputs = saved[:7]
        if grad_y is None and grad_ladj is None:
            return (None,) * 10
        grad_y = torch.zeros_like(inputs[0]) if grad_y is None else grad_y
        grad_ladj = torch.zeros_like(inputs[0]) if grad_ladj is None else grad_ladj
        if _recorded():  # a recorded backward: differentiate the plain code
            from cflib.splines import _rq_bin

            plain = lambda *a: _rq_bin(*a, *ctx.options)[:2]
            needs = [*ctx.needs_input_grad[:6], False]
            return (*_recompute_grads(plain, inputs, needs, [grad_y, grad_ladj]), None, None, None)
        (inside, xi, one_m, t, xi2, one_m2, q, s, delta, d0, d1, w, h, uw, uh, xk_b, yk_b,
         den, inner, z) = saved[7:]  # fmt: skip
        tw, th = inputs[2], inputs[4]
        # Outside, y = x: only x gets a gradient. (One tensor for both gradients, so that under
        # vmap, as in jacobian(..., vectorize=True), both are batched when either is: the in-place
        # steps below combine them.)
        g_out, g_l = torch.where(inside, torch.stack([grad_y, grad_ladj]), 0.0)
        r_den, r_inner = den.reciprocal(), inner.reciprocal()
        # Partial derivatives of h q (p_*) and of L (l_*), see the class docstring; p_d1 is
        # kept without its minus sign.
        h_den = h * r_den
        u = torch.sub(1, t, alpha=2)  # 1 - 2t
        p_s = torch.addcmul(xi2, q, u, value=-1).mul_(h_den)
        p_d0 = (1 - q).mul_(t).mul_(h_den)
        p_d1 = torch.mul(q, t).mul_(h_den)
        two_t_den = torch.mul(t, r_den).mul_(2)
        l_xi = torch.mul(d1, xi).addcmul_(s, one_m - xi).addcmul_(d0, one_m, value=-1)
        l_xi = l_xi.mul_(r_inner).addcmul_(delta, (one_m - xi).mul_(r_den), value=-1).mul_(2)
        l_s = torch.mul(t, r_inner).addcmul_(u, r_den, value=-1).add_(s.reciprocal()).mul_(2)
        l_d0 = torch.mul(one_m2, r_inner).sub_(two_t_den)
        l_d1 = torch.mul(xi2, r_inner).sub_(two_t_den)
        if ctx.options[0]:  # inverse
            # d xi / d y = 1 / (h q_xi) = den^2 / (h s inner): h s inner > 0 cannot underflow.
            a = torch.mul(g_out, w).addcmul_(g_l, l_xi, value=-1)
            a = a.mul_(den * den).div_(h * s * inner)
            g_s = torch.mul(a, p_s).addcmul_(g_l, l_s).neg_()
            g_x, g_yk, g_xk = a, -a, g_out
            gs_w = g_s / w
            g_h = torch.addcmul(gs_w, a, q, value=-1)
            g_w = torch.mul(g_out, xi).addcmul_(gs_w, s, value=-1)
            g_d0 = torch.mul(a, p_d0).addcmul_(g_l, l_d0).neg_()
            g_d1 = torch.mul(a, p_d1).addcmul_(g_l, l_d1, value=-1)
        else:
            g_xi = torch.mul(g_out, h_den).mul_(s).mul_(inner).mul_(r_den).addcmul_(g_l, l_xi)
            g_s = torch.mul(g_out, p_s).addcmul_(g_l, l_s)
            g_x = g_xi / w
            g_xk, g_yk = -g_x, g_out
            gs_w = g_s / w
            g_h = torch.addcmul(gs_w, g_out, q)
            g_w = torch.mul(g_x, xi).addcmul_(gs_w, s).neg_()
            g_d0 = torch.mul(g_out, p_d0).addcmul_(g_l, l_d0)
            g_d1 = torch.mul(g_l, l_d1).addcmul_(g_out, p_d1, value=-1)
        # Through the bin edges: x_k + B = C_k u, w = (C_{k+1} - C_k) u, u = 2B / T.
        g_cw = torch.stack([g_xk - g_w, g_w]).mul_(uw)
        g_tw = torch.mul(g_xk, xk_b).addcmul_(g_w, w).div_(tw).neg_()
        g_ch = torch.stack([g_yk - g_h, g_h]).mul_(uh)
        g_th = torch.mul(g_yk, yk_b).addcmul_(g_h, h).div_(th).neg_()
        g_raw = torch.stack([g_d0, g_d1]).mul_(z.sigmoid()).mul_(inputs[6])  # d slope / d raw
        g_x = torch.where(inside, g_x, grad_y)
        return g_x, g_cw, g_tw, g_ch, g_th, g_raw, None, None, None, None

    @classmethod
    def apply(cls, *args) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """``(y, ladj)`` (the intermediate values are kept internally)."""
        y, ladj, *_ = super().apply(*args)
        return y, ladj
