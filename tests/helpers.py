"""Shared test utilities: move layers off their identity start, exact log-dets from autograd."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def perturb_(module: nn.Module, scale: float = 0.3, seed: int = 0) -> nn.Module:
    """Add Gaussian noise to every parameter so zero-initialised layers are not the identity.

    Weights get noise of std ``scale / sqrt(fan_in)`` (so deep conditioners stay well scaled),
    vectors (biases, log-scales) noise of std ``scale``.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            std = scale / p[0].numel() ** 0.5 if p.dim() >= 2 else scale
            p.add_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def autograd_logdet(fn, x: Tensor) -> Tensor:
    """log|det J| of ``fn`` at each sample of ``x`` from the full Jacobian (autograd), shape (batch,)."""
    out = []
    for xi in x:
        jac = torch.autograd.functional.jacobian(lambda v: fn(v[None])[0][0].flatten(), xi)
        out.append(torch.linalg.slogdet(jac.reshape(xi.numel(), xi.numel()))[1])
    return torch.stack(out)
