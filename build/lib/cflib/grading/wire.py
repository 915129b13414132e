"""Plain data across the kernel boundary: encoders for probes, safe decoders for the grader.

Probes run in the student's kernel and may only send back JSON data: numbers, strings, lists, dicts.
Tensors travel as nested lists with their dtype, sympy objects as ``srepr`` strings. The kernel is
untrusted, so the grader never ``eval``s what comes back: :func:`decode_expr` parses an ``srepr``
string with :mod:`ast` and rebuilds it from an allow-list of sympy constructors (string literals only
as names of symbols and functions), with a cap on its size.

Encoders (used inside probes, in the kernel): :func:`encode_expr`, :func:`encode_matrix`,
:func:`encode_tensor`, :func:`describe`. Decoders (used by checks, in the grader, and by probes for
the inputs the grader sends): :func:`parse_srepr`, :func:`decode_expr`, :func:`decode_matrix`,
:func:`decode_array`. A decoder raises :class:`DecodeError` with a message fit for the student when
the data is not what was expected. :func:`make_real` makes symbols comparable across the boundary.
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

__all__ = [
    "DecodeError",
    "decode_array",
    "decode_expr",
    "decode_matrix",
    "describe",
    "encode_expr",
    "encode_matrix",
    "encode_tensor",
    "make_real",
    "parse_srepr",
]

MAX_EXPR_CHARS = 200_000
MAX_EXPR_NODES = 5_000
MAX_INT = 10**6


class DecodeError(ValueError):
    """Data sent back by a probe is not what the check expected (the message says what it was)."""


# --- encoders: run inside the kernel ------------------------------------------------------------


def describe(obj: object) -> str:
    """A short description of an object's type, e.g. ``'list'`` or ``'sympy MutableDenseMatrix'``."""
    module = type(obj).__module__.split(".")[0]
    name = type(obj).__name__
    return name if module == "builtins" else f"{module} {name}"


def encode_expr(expr: object) -> dict[str, Any]:
    """A sympy expression (or a number) as ``{"expr": srepr}``; anything else as ``{"type": ...}``."""
    import sympy

    try:
        return {"expr": sympy.srepr(sympy.sympify(expr, strict=True))}
    except (sympy.SympifyError, TypeError, ValueError):
        return {"type": describe(expr)}


def encode_matrix(matrix: object) -> dict[str, Any]:
    """A sympy matrix as ``{"shape": [rows, cols], "entries": [srepr, ...]}`` (row-major).

    Anything else becomes ``{"type": description}`` so the check can say what it got instead.
    """
    import sympy

    if not isinstance(matrix, sympy.MatrixBase):
        return {"type": describe(matrix)}
    return {"shape": list(matrix.shape), "entries": [sympy.srepr(e) for e in matrix]}


def make_real(expr: Any) -> Any:
    """``expr`` with every symbol and undefined function replaced by a real one of the same name.

    ``srepr`` drops the assumptions of undefined functions, and students may declare symbols with
    or without ``real=True``: both sides of a comparison go through this first.
    """
    import sympy
    from sympy.core.function import AppliedUndef

    if isinstance(expr, sympy.MatrixBase):
        return expr.applyfunc(make_real)
    expr = sympy.sympify(expr)
    symbols = {s: sympy.Symbol(s.name, real=True) for s in expr.atoms(sympy.Symbol)}
    expr = expr.xreplace(symbols)
    return expr.replace(
        lambda e: isinstance(e, AppliedUndef),
        lambda e: sympy.Function(e.func.__name__, real=True)(*e.args),
    )


def encode_tensor(x: object) -> dict[str, Any]:
    """A tensor as ``{"shape": [...], "dtype": "torch.float64", "data": nested lists}``.

    Anything else becomes ``{"type": description}``.
    """
    import torch

    if not isinstance(x, torch.Tensor):
        return {"type": describe(x)}
    x = x.detach().cpu()
    data = x.double().tolist() if x.is_floating_point() else x.tolist()
    return {"shape": list(x.shape), "dtype": str(x.dtype), "data": data}


# --- decoders: run in the grader ----------------------------------------------------------------


def _sympy_names() -> tuple[dict[str, Any], dict[str, Any]]:
    import sympy

    calls = {
        name: getattr(sympy, name)
        for name in (
            "Integer Rational Float Add Mul Pow exp log Abs sign sqrt sin cos tan tanh sinh cosh "
            "asin acos atan asinh acosh atanh re im conjugate Max Min Heaviside Derivative Tuple "
            "Subs Function"
        ).split()
    }
    constants = {name: getattr(sympy, name) for name in ("pi", "E", "I", "oo", "zoo", "nan")}
    constants["true"], constants["false"] = sympy.true, sympy.false
    return calls, constants


_NAMED = {"Symbol", "Dummy", "Function"}  # constructors whose first argument is a name (a string)
_ASSUMPTIONS = {
    "real",
    "positive",
    "negative",
    "nonnegative",
    "nonpositive",
    "integer",
    "finite",
    "commutative",
    "complex",
    "zero",
    "nonzero",
}


def _small_power(base: Any, exponent: Any) -> bool:
    """Whether ``base ** exponent`` is cheap to evaluate (huge numeric powers are refused)."""
    if not exponent.is_Rational:
        return True
    if max(abs(exponent.p), abs(exponent.q)) > 100:
        return False
    return not base.is_Rational or max(abs(base.p), abs(base.q)) <= MAX_INT


def parse_srepr(text: object) -> Any:
    """Rebuild a sympy expression from its ``srepr`` string without evaluating code.

    Raises:
        DecodeError: not a string, too long or too large, or uses something outside the allow-list.
    """
    import sympy

    if not isinstance(text, str):
        raise DecodeError(f"expected an srepr string, got {describe(text)}")
    if len(text) > MAX_EXPR_CHARS:
        raise DecodeError(f"the expression is too large to check ({len(text)} characters)")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        raise DecodeError("the expression could not be read back") from exc
    calls, constants = _sympy_names()
    budget = [MAX_EXPR_NODES]

    def bad(node: ast.AST) -> DecodeError:
        return DecodeError(
            f"the expression uses something that cannot be checked: {ast.unparse(node)[:80]}"
        )

    def literal(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) in (int, bool):
            if type(node.value) is int and abs(node.value) > MAX_INT:
                raise DecodeError("the expression holds an integer too large to check")
            return node.value
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
        ):
            return -literal(node.operand)
        raise bad(node)

    def name_of(node: ast.AST) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 64:
            if node.value.replace("_", "").replace("^", "").isalnum():
                return node.value
        raise bad(node)

    def build(node: ast.AST) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise DecodeError(f"the expression is too large to check (over {MAX_EXPR_NODES} nodes)")
        if isinstance(node, ast.Name) and node.id in constants:
            return constants[node.id]
        if not isinstance(node, ast.Call):
            raise bad(node)
        if isinstance(node.func, ast.Call):  # an applied function: Function('s_2')(z_1, ...)
            head = build(node.func)
            if not isinstance(head, sympy.core.function.UndefinedFunction) or node.keywords:
                raise bad(node)
            return head(*[build(a) for a in node.args])
        if not isinstance(node.func, ast.Name):
            raise bad(node)
        fname = node.func.id
        if fname in _NAMED:
            if not node.args:
                raise bad(node)
            kwargs = {}
            for kw in node.keywords:
                if kw.arg in _ASSUMPTIONS:
                    kwargs[kw.arg] = literal(kw.value)
                elif not (fname == "Dummy" and kw.arg == "dummy_index"):
                    raise bad(node)
            name = name_of(node.args[0])
            if len(node.args) != 1:
                raise bad(node)
            if fname == "Function":
                return sympy.Function(name, **kwargs)
            return (sympy.Symbol if fname == "Symbol" else sympy.Dummy)(name, **kwargs)
        if fname == "Float":
            if len(node.args) != 1 or not isinstance(node.args[0], ast.Constant):
                raise bad(node)
            value = node.args[0].value
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise bad(node)
            try:
                return sympy.Float(float(value))
            except (ValueError, OverflowError) as exc:
                raise bad(node) from exc
        if fname in ("Integer", "Rational"):
            if node.keywords or not 1 <= len(node.args) <= 2:
                raise bad(node)
            return calls[fname](*[literal(a) for a in node.args])
        if fname not in calls or node.keywords:
            raise bad(node)
        args = [build(a) for a in node.args]
        if fname == "Pow" and len(args) == 2 and not _small_power(*args):
            raise DecodeError("the expression holds a power of a number too large to check")
        return calls[fname](*args)

    try:
        return build(tree.body)
    except RecursionError as exc:
        raise DecodeError("the expression is nested too deeply to check") from exc
    except (TypeError, ValueError, ArithmeticError) as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"the expression could not be rebuilt: {type(exc).__name__}") from exc


def decode_expr(data: object, what: str = "the result") -> Any:
    """Rebuild a sympy expression from :func:`encode_expr`'s output."""
    if isinstance(data, dict) and "type" in data:
        raise DecodeError(f"expected {what} to be a sympy expression, got {data['type']}")
    if not (isinstance(data, dict) and "expr" in data):
        raise DecodeError(f"expected {what} to be a sympy expression")
    return parse_srepr(data["expr"])


def decode_matrix(data: object, what: str = "the result") -> Any:
    """Rebuild a sympy ``Matrix`` from :func:`encode_matrix`'s output."""
    import sympy

    if isinstance(data, dict) and "type" in data:
        raise DecodeError(f"expected {what} to be a sympy Matrix, got {data['type']}")
    if not (isinstance(data, dict) and isinstance(data.get("shape"), list)):
        raise DecodeError(f"expected {what} to be a sympy Matrix")
    shape, entries = data["shape"], data.get("entries")
    if (
        len(shape) != 2
        or not all(type(n) is int and 0 <= n <= 64 for n in shape)
        or not isinstance(entries, list)
        or len(entries) != shape[0] * shape[1]
    ):
        raise DecodeError(f"expected {what} to be a sympy Matrix of a sensible size")
    return sympy.Matrix(shape[0], shape[1], [parse_srepr(e) for e in entries])


def decode_array(data: object, what: str = "the result") -> tuple[np.ndarray, str]:
    """Rebuild ``(array, dtype name)`` from :func:`encode_tensor`'s output (as float64 numbers)."""
    if isinstance(data, dict) and "type" in data:
        raise DecodeError(f"expected {what} to be a torch.Tensor, got {data['type']}")
    if not (isinstance(data, dict) and isinstance(data.get("shape"), list)):
        raise DecodeError(f"expected {what} to be a torch.Tensor")
    try:
        array = np.asarray(data["data"], dtype=np.float64)
    except (TypeError, ValueError, KeyError) as exc:
        raise DecodeError(f"{what}: the tensor's values could not be read") from exc
    if list(array.shape) != data["shape"]:
        raise DecodeError(f"{what}: the tensor's values do not match its shape")
    return array, str(data.get("dtype"))
