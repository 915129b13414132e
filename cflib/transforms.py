"""The invertible-layer interface and its composition.

Every layer maps a batch ``x`` of shape ``(batch, *event)`` to ``y`` of shape ``(batch, *event')``
and returns the log-absolute-determinant of its Jacobian, one value per sample::

    forward(x) -> (y, ladj)   ladj = log|det dy/dx|,   shape (batch,)
    inverse(y) -> (x, ladj)   ladj = log|det dx/dy| = -(forward ladj at x)

Each direction is one pass; neither calls the other.

Input checks. Every layer checks the shape and dtype of its input (host-side metadata, free). The
check of the values (NaN, infinity) runs once per call at the entry point the user called: a layer
called on its own checks them, but a layer inside a :class:`Compose`, an :class:`Inverse` or a flow
leaves them to the container, which checks its own input once. Value checks follow
``torch.distributions.Distribution.set_default_validate_args`` (and a flow's ``validate_args``).
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn

from cflib.validation import check_finite, validation_enabled

__all__ = ["Compose", "Inverse", "Transform"]


class Transform(nn.Module):
    """Base class of invertible layers: subclasses implement ``forward`` and ``inverse``."""

    #: Whether this layer checks its input's values itself (see the module docstring); a container
    #: switches it off for the layers inside it (:func:`contain`).
    checks_values: bool = True

    def _check_values(self) -> bool:
        """Whether to check the input's values in this call."""
        return self.checks_values and validation_enabled()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError(f"{type(self).__name__} does not implement inverse")


def _conditional(t: Transform) -> bool:
    """Whether ``t`` takes a context argument (conditional couplings and compositions of them)."""
    return getattr(t, "is_conditional", False)


def contain(inner: Transform) -> None:
    """Mark every layer in ``inner`` (itself included) as checked by its container."""
    for m in inner.modules():
        if isinstance(m, Transform):
            m.checks_values = False


class Compose(Transform):
    r"""Apply transforms in order: :math:`f = f_L \circ \dots \circ f_1`.

    ``log|det J_f| = sum_l log|det J_{f_l}|`` (chain rule); the inverse runs the layers backwards.
    """

    def __init__(self, transforms: Iterable[Transform]):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)
        for i, t in enumerate(self.transforms):
            if not isinstance(t, Transform):
                raise TypeError(
                    f"transforms[{i}]: expected a cflib Transform, got {type(t).__name__}"
                )
            contain(t)

    @property
    def is_conditional(self) -> bool:
        return any(_conditional(t) for t in self.transforms)

    def __len__(self) -> int:
        return len(self.transforms)

    def __getitem__(self, i: int) -> Transform:
        return self.transforms[i]

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self._check_values():
            check_finite(x, "x")
        ladj = x.new_zeros(x.shape[0])
        for t in self.transforms:
            x, step = t(x, context) if _conditional(t) else t(x)
            ladj = ladj + step
        return x, ladj

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self._check_values():
            check_finite(y, "y")
        ladj = y.new_zeros(y.shape[0])
        for t in reversed(self.transforms):
            y, step = t.inverse(y, context) if _conditional(t) else t.inverse(y)
            ladj = ladj + step
        return y, ladj


class Inverse(Transform):
    """The inverse of a transform: ``Inverse(t).forward == t.inverse`` and vice versa."""

    def __init__(self, transform: Transform):
        super().__init__()
        if not isinstance(transform, Transform):
            raise TypeError(
                f"transform: expected a cflib Transform, got {type(transform).__name__}"
            )
        self.transform = transform
        contain(transform)

    @property
    def is_conditional(self) -> bool:
        return _conditional(self.transform)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self._check_values():
            check_finite(x, "x")
        t = self.transform
        return t.inverse(x, context) if _conditional(t) else t.inverse(x)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self._check_values():
            check_finite(y, "y")
        t = self.transform
        return t(y, context) if _conditional(t) else t(y)
