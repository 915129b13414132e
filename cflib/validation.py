"""Input checks that turn bad input into a clear error naming the argument.

Every public layer calls these before touching torch, so a wrong shape or a NaN is reported as
``ValueError: x: expected shape (batch, 4), got (8, 3)`` instead of a traceback from deep inside
an ``nn.Linear`` or a ``searchsorted``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Distribution

__all__ = [
    "check_all_finite",
    "check_event",
    "check_finite",
    "check_like",
    "check_tensor",
    "validation_enabled",
]


def validation_enabled() -> bool:
    """Whether value checks run by default: ``torch.distributions.Distribution``'s global switch
    (``Distribution.set_default_validate_args``, on unless Python runs with ``-O``)."""
    return bool(Distribution._validate_args)


def _traced(x: Tensor) -> bool:
    """Whether ``x``'s values are unknown here: ``torch.compile``/``torch.export`` are tracing, or
    ``x`` is inside a ``torch.func`` transform (``vmap``, ``grad``...). Checks on values cannot run
    then (a data-dependent branch); checks on shapes, dtypes and devices still do."""
    return torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(x)


def check_tensor(x: object, name: str = "x") -> Tensor:
    """Raise ``TypeError`` unless ``x`` is a floating-point tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    return x


def check_finite(x: Tensor, name: str = "x") -> Tensor:
    """Raise ``ValueError`` if ``x`` holds a NaN or an infinity.

    The common case is made cheap: the sum is non-finite when an element is (or, rarely, when
    finite elements overflow it; the element-wise test then decides), one read-only reduction and
    a scalar test instead of an element-wise boolean tensor. It never waits for an accelerator: on
    a CUDA (or other non-CPU) device the test is ``torch._assert_async``, which raises when the
    device reaches it (a ``RuntimeError`` with this message). Skipped while ``torch.compile`` or
    ``torch.export`` traces and inside ``torch.func`` transforms, where values are unknown.
    """
    if _traced(x):
        return x
    if x.device.type != "cpu":
        message = f"{name}: contains non-finite value(s) (NaN or inf)"
        torch._assert_async(torch.isfinite(x).all(), message)
        return x
    if not bool(torch.isfinite(x.sum())):
        _raise_if_not_finite(x, name)
    return x


def check_all_finite(tensors: dict[str, Tensor]) -> None:
    """:func:`check_finite` for several tensors with one host synchronisation (one reduction
    each); the error names the first tensor, in order, that holds a NaN or an infinity."""
    if any(_traced(t) or t.device.type != "cpu" for t in tensors.values()):
        for name, t in tensors.items():
            check_finite(t, name)
        return
    if not bool(torch.isfinite(torch.stack([t.sum() for t in tensors.values()])).all()):
        for name, t in tensors.items():
            _raise_if_not_finite(t, name)


def _raise_if_not_finite(x: Tensor, name: str) -> None:
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(f"{name}: contains {bad} non-finite value(s) (NaN or inf)")


def check_event(
    x: object, event_shape: Sequence[int], name: str = "x", finite: bool = True
) -> Tensor:
    """Check that ``x`` is a float tensor of shape ``(batch, *event_shape)``.

    Args:
        x: the input.
        event_shape: the expected shape of one sample, e.g. ``(dim,)`` or ``(C, H, W)``.
        name: the argument's name, used in the message.
        finite: also reject NaN and infinity.
    """
    x = check_tensor(x, name)
    event_shape = tuple(int(s) for s in event_shape)
    expected = "(batch, " + ", ".join(str(s) for s in event_shape) + ")"
    if x.dim() != len(event_shape) + 1:
        raise ValueError(
            f"{name}: expected a tensor of shape {expected} ({len(event_shape) + 1} dims), "
            f"got shape {tuple(x.shape)} ({x.dim()} dims)"
        )
    if tuple(x.shape[1:]) != event_shape:
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(x.shape)}")
    if finite:
        check_finite(x, name)
    return x


def check_like(x: Tensor, reference: Tensor, name: str, owner: str) -> None:
    """Raise ``TypeError`` unless ``x`` has ``reference``'s dtype and ``ValueError`` unless it is on
    its device; ``owner`` says whose they are (e.g. "the flow's")."""
    if x.dtype != reference.dtype:
        raise TypeError(
            f"{name}: expected dtype {reference.dtype} ({owner}), got {x.dtype}; convert the "
            f"input with .to({reference.dtype}) or the module with .to({x.dtype})"
        )
    if x.device != reference.device:
        raise ValueError(f"{name}: expected device {reference.device} ({owner}), got {x.device}")
