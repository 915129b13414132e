"""Matplotlib figures for the book: densities, samples, layer-by-layer flows, Jacobian patterns, masks.

Every function draws on ``ax`` when given (else on a new figure) and returns the axes (or, for
:func:`plot_layers`, the figure); none calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from torch import Tensor, nn

__all__ = [
    "density_grid",
    "plot_density",
    "plot_jacobian_pattern",
    "plot_layers",
    "plot_mask",
    "plot_samples",
]

Bounds = tuple[float, float] | tuple[tuple[float, float], tuple[float, float]]


def _box(bounds: Bounds) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(lo, hi)`` (a square) or ``((xlo, xhi), (ylo, yhi))`` as two float pairs."""
    try:
        if np.ndim(bounds) == 1 and len(bounds) == 2:
            lo, hi = (float(b) for b in bounds)
            box = ((lo, hi), (lo, hi))
        else:
            (xlo, xhi), (ylo, yhi) = bounds
            box = ((float(xlo), float(xhi)), (float(ylo), float(yhi)))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"bounds: expected (lo, hi) or ((xlo, xhi), (ylo, yhi)), got {bounds!r}"
        ) from err
    if not (box[0][0] < box[0][1] and box[1][0] < box[1][1]):
        raise ValueError(f"bounds: expected lo < hi on each axis, got {bounds!r}")
    return box


def _new_axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    elif not isinstance(ax, Axes):
        raise TypeError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def _numpy(x: Any, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().to("cpu", torch.float64 if x.is_floating_point() else x.dtype).numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"{name}: expected a torch.Tensor or a numpy array, got {type(x).__name__}")


def _points(x: Any, name: str) -> np.ndarray:
    arr = _numpy(x, name)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name}: expected shape (n, 2), got {arr.shape}")
    return arr.astype(np.float64)


def _placement(module: object) -> tuple[torch.device, torch.dtype]:
    if isinstance(module, nn.Module):
        for p in module.parameters():
            if p.is_floating_point():
                return p.device, p.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def density_grid(
    log_prob: Any, bounds: Bounds, resolution: int = 200, batch_size: int = 65536
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log p`` at the centres of a ``resolution x resolution`` grid of cells over ``bounds``.

    ``log_prob`` is a model or target with ``log_prob(x)``, or a callable ``x -> (batch,)``.
    Returns ``(xs, ys, log_p)`` with ``log_p[i, j] = log p(xs[j], ys[i])`` (float64).
    """
    fn: Callable[[Tensor], Tensor] | None = getattr(log_prob, "log_prob", None)
    if fn is None and callable(log_prob):
        fn = log_prob
    if not callable(fn):
        raise TypeError(
            "log_prob_fn: expected a model/target with log_prob or a callable, "
            f"got {type(log_prob).__name__}"
        )
    if not isinstance(resolution, int) or isinstance(resolution, bool) or resolution < 2:
        raise ValueError(f"resolution: expected an int >= 2, got {resolution!r}")
    (xlo, xhi), (ylo, yhi) = _box(bounds)
    xs = xlo + (np.arange(resolution) + 0.5) * (xhi - xlo) / resolution
    ys = ylo + (np.arange(resolution) + 0.5) * (yhi - ylo) / resolution
    gx, gy = np.meshgrid(xs, ys)
    device, dtype = _placement(log_prob)
    points = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=-1), dtype=dtype)
    with torch.no_grad():
        values = [
            fn(chunk.to(device)).to("cpu", torch.float64) for chunk in points.split(batch_size)
        ]
    return xs, ys, torch.cat(values).numpy().reshape(resolution, resolution)


def plot_density(
    log_prob_fn: Any,
    bounds: Bounds,
    ax: Axes | None = None,
    resolution: int = 200,
    log: bool = False,
    cmap: str = "viridis",
    title: str | None = None,
) -> Axes:
    """Show ``p = exp(log p)`` (or ``log p`` with ``log=True``) on a grid over ``bounds``.

    ``log_prob_fn`` is a model or target with ``log_prob`` or a callable ``x -> log p(x)``;
    ``bounds`` is ``(lo, hi)`` for a square or ``((xlo, xhi), (ylo, yhi))``. Evaluated at the
    cell centres of a ``resolution x resolution`` grid (see :func:`density_grid`), without
    gradients, on the model's device and dtype. Non-finite values are masked (left blank).
    """
    _, _, lp = density_grid(log_prob_fn, bounds, resolution)
    with np.errstate(over="ignore"):
        values = lp if log else np.exp(lp)
    ax = _new_axes(ax)
    (xlo, xhi), (ylo, yhi) = _box(bounds)
    ax.imshow(
        np.ma.masked_invalid(values),
        origin="lower",
        extent=(xlo, xhi, ylo, yhi),
        cmap=cmap,
        interpolation="nearest",
        aspect="equal",
    )
    ax.set_xlim(xlo, xhi)
    ax.set_ylim(ylo, yhi)
    if title is not None:
        ax.set_title(title)
    return ax


def plot_samples(
    x: Any,
    ax: Axes | None = None,
    bounds: Bounds | None = None,
    s: float = 1.0,
    alpha: float = 0.5,
    color: Any = None,
    title: str | None = None,
    **scatter_kwargs: Any,
) -> Axes:
    """Scatter plot of points ``x`` of shape ``(n, 2)`` (tensor or array); equal aspect."""
    pts = _points(x, "x")
    ax = _new_axes(ax)
    ax.scatter(pts[:, 0], pts[:, 1], s=s, alpha=alpha, c=color, linewidths=0, **scatter_kwargs)
    ax.set_aspect("equal")
    if bounds is not None:
        (xlo, xhi), (ylo, yhi) = _box(bounds)
        ax.set_xlim(xlo, xhi)
        ax.set_ylim(ylo, yhi)
    if title is not None:
        ax.set_title(title)
    return ax


def _transforms(flow: Any) -> list[nn.Module]:
    layers = getattr(flow, "transforms", flow)
    if not isinstance(layers, Iterable):
        raise TypeError(
            "flow: expected a flow with .transforms or an iterable of transforms, "
            f"got {type(flow).__name__}"
        )
    layers = list(layers)
    for i, t in enumerate(layers):
        if not callable(t):
            raise TypeError(f"flow.transforms[{i}]: expected a transform, got {type(t).__name__}")
    return layers


def plot_layers(
    flow: Any,
    z: Any,
    layers: Sequence[int] | None = None,
    color: Any = None,
    cmap: str = "hsv",
    bounds: Bounds | None = None,
    panel_size: float = 2.5,
    s: float = 2.0,
) -> Figure:
    """A row of panels: the base points ``z``, then the points after each layer of the flow.

    ``flow.transforms`` (or ``flow`` itself, an iterable of transforms) is applied in order with
    ``layer(x) -> (y, ladj)``, in the generative direction. ``layers`` picks the (0-based)
    layer indices after which a panel is drawn (default: every layer). Points keep a fixed
    colour, by default the angle ``atan2(z_2, z_1)`` of the base point, so one sees where each
    layer moves them. ``bounds`` fixes every panel's box (default: each panel fits its points).
    """
    transforms = _transforms(flow)
    base = _points(z, "z")
    if layers is None:
        layers = range(len(transforms))
    layers = sorted(set(int(i) for i in layers))
    if layers and not 0 <= layers[0] <= layers[-1] < len(transforms):
        raise ValueError(f"layers: expected indices in [0, {len(transforms) - 1}], got {layers}")
    if color is None:
        color = np.arctan2(base[:, 1], base[:, 0])
        vmin, vmax = -np.pi, np.pi
    else:
        color = _numpy(color, "color")
        if color.shape != (len(base),):
            raise ValueError(f"color: expected shape ({len(base)},), got {color.shape}")
        vmin, vmax = float(color.min()), float(color.max())

    owner = (
        flow
        if isinstance(flow, nn.Module)
        else next((t for t in transforms if isinstance(t, nn.Module)), None)
    )
    device, dtype = _placement(owner)
    x = torch.as_tensor(base, dtype=dtype, device=device)
    panels = [("base $z$", base)]
    with torch.no_grad():
        for i, layer in enumerate(transforms[: layers[-1] + 1] if layers else []):
            x, _ = layer(x)
            if i in layers:
                panels.append((f"{i + 1}: {type(layer).__name__}", _points(x, "layer output")))

    fig, axes = plt.subplots(
        1, len(panels), figsize=(panel_size * len(panels), panel_size), squeeze=False
    )
    for ax, (title, pts) in zip(axes[0], panels, strict=True):
        ax.scatter(
            pts[:, 0], pts[:, 1], c=color, cmap=cmap, vmin=vmin, vmax=vmax, s=s, linewidths=0
        )
        ax.set_title(title, fontsize="small")
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        if bounds is not None:
            (xlo, xhi), (ylo, yhi) = _box(bounds)
            ax.set_xlim(xlo, xhi)
            ax.set_ylim(ylo, yhi)
    fig.tight_layout()
    return fig


def _grid_lines(ax: Axes, rows: int, cols: int) -> None:
    ax.set_xticks(np.arange(-0.5, cols, 1.0), minor=True)
    ax.set_yticks(np.arange(-0.5, rows, 1.0), minor=True)
    ax.grid(which="minor", color="0.6", linewidth=0.5)
    ax.tick_params(which="minor", length=0)


def plot_jacobian_pattern(
    pattern: Any,
    ax: Axes | None = None,
    row_label: str = "y",
    col_label: str = "z",
    title: str | None = None,
    color: str = "C0",
) -> Axes:
    r"""Show a dependency matrix: cell ``(i, j)`` is filled when output ``i`` depends on input ``j``.

    ``pattern`` is a ``(d_out, d_in)`` boolean (or numeric: nonzero is ``True``) tensor or array,
    e.g. ``J != 0`` for a Jacobian ``J[i, j] = dy_i / dz_j``. Rows are labelled
    ``row_label_1 ...``, columns ``col_label_1 ...`` (1-based).
    """
    arr = _numpy(pattern, "pattern")
    if arr.ndim != 2:
        raise ValueError(f"pattern: expected a 2-D (d_out, d_in) matrix, got shape {arr.shape}")
    filled = (arr != 0).astype(np.float64)
    ax = _new_axes(ax)
    ax.imshow(
        filled, cmap=ListedColormap(["white", color]), vmin=0, vmax=1, interpolation="nearest"
    )
    rows, cols = filled.shape
    ax.set_xticks(range(cols), [f"${col_label}_{{{j + 1}}}$" for j in range(cols)])
    ax.set_yticks(range(rows), [f"${row_label}_{{{i + 1}}}$" for i in range(rows)])
    ax.xaxis.tick_top()
    _grid_lines(ax, rows, cols)
    if title is not None:
        ax.set_title(title, pad=20)  # above the tick labels on top
    return ax


def plot_mask(
    mask: Any, ax: Axes | None = None, title: str | None = None, color: str = "0.15"
) -> Axes:
    """Show a 2-D ``(H, W)`` mask (tensor or array): ones/``True`` filled, zeros white."""
    arr = _numpy(mask, "mask")
    if arr.ndim != 2:
        raise ValueError(f"mask: expected a 2-D (H, W) mask, got shape {arr.shape}")
    filled = (arr != 0).astype(np.float64)
    ax = _new_axes(ax)
    ax.imshow(
        filled, cmap=ListedColormap(["white", color]), vmin=0, vmax=1, interpolation="nearest"
    )
    rows, cols = filled.shape
    ax.set_xticks([])
    ax.set_yticks([])
    _grid_lines(ax, rows, cols)
    if title is not None:
        ax.set_title(title)
    return ax
