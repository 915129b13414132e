"""Binary masks that choose which part of the input a coupling leaves unchanged.

Convention: ``mask[i] == True`` marks the *conditioning* part :math:`z_a` (copied to the output
unchanged); ``False`` marks the part :math:`z_b` that is transformed. ``flip=True`` returns the
complement, so consecutive couplings alternate which half they transform.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["channel_mask", "checkerboard_mask"]


def _check_size(value: object, name: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return value


def channel_mask(dim: int, flip: bool = False) -> Tensor:
    """First-half / second-half split, shape ``(dim,)``, dtype bool.

    ``mask[:dim // 2] = True`` (unchanged), the rest ``False`` (transformed); ``flip`` swaps them.
    For images use ``dim = channels``: the split is then over channels.
    """
    dim = _check_size(dim, "dim", 2)
    mask = torch.arange(dim) < dim // 2
    return ~mask if flip else mask


def checkerboard_mask(height: int, width: int, flip: bool = False) -> Tensor:
    """Checkerboard pattern ``mask[i, j] = (i + j) mod 2``, shape ``(height, width)``, dtype bool.

    ``True`` pixels are unchanged; ``flip`` gives the complementary pattern ``1 - (i + j) mod 2``.
    """
    height = _check_size(height, "height", 1)
    width = _check_size(width, "width", 1)
    if height * width < 2:
        raise ValueError(f"checkerboard_mask: needs at least 2 pixels, got {height}x{width}")
    i = torch.arange(height)[:, None]
    j = torch.arange(width)[None, :]
    mask = (i + j) % 2 == 1
    return ~mask if flip else mask
