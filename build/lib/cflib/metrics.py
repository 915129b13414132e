"""Evaluation metrics: negative log-likelihood, Monte Carlo KL, bits per dimension, ESS.

A *model* here is anything with ``log_prob(x) -> (batch,)`` (a flow, a target); for the reverse
KL it also needs ``sample(n) -> (n, dim)``. Inputs are moved to the model's device and, for a
model with floating-point parameters, to their dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from cflib.validation import check_tensor

__all__ = ["bits_per_dim", "effective_sample_size", "kl_divergence", "nll"]


def _placement(model: object) -> tuple[torch.device | None, torch.dtype | None]:
    """The device and floating dtype of ``model``'s parameters (``None`` when it has none)."""
    if isinstance(model, nn.Module):
        for p in model.parameters():
            if p.is_floating_point():
                return p.device, p.dtype
    return None, None


def _log_prob_fn(model: object, name: str) -> Callable[[Tensor], Tensor]:
    log_prob = getattr(model, "log_prob", None)
    if not callable(log_prob):
        raise TypeError(
            f"{name}: expected an object with a log_prob method, got {type(model).__name__}"
        )
    return log_prob


@torch.no_grad()
def _batched_log_prob(model: Any, x: Tensor, batch_size: int | None, name: str) -> Tensor:
    """``model.log_prob`` over ``x`` in batches, as a float64 CPU tensor of shape ``(len(x),)``."""
    log_prob = _log_prob_fn(model, name)
    device, dtype = _placement(model)
    size = len(x) if batch_size is None else batch_size
    out = []
    for chunk in x.split(max(size, 1)):
        chunk = chunk.to(device=device or chunk.device, dtype=dtype or chunk.dtype)
        lp = log_prob(chunk)
        if lp.shape != (len(chunk),):
            raise ValueError(
                f"{name}.log_prob: expected shape ({len(chunk)},), got {tuple(lp.shape)}"
            )
        out.append(lp.detach().to("cpu", torch.float64))
    return torch.cat(out)


def _check_batch_size(batch_size: object) -> int | None:
    if batch_size is not None and (
        not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
    ):
        raise ValueError(f"batch_size: expected a positive int or None, got {batch_size!r}")
    return batch_size


def nll(model: Any, x: Tensor, batch_size: int | None = None) -> float:
    r"""Mean negative log-likelihood in nats, ``-(1/N) sum_n log q(x_n)``.

    ``x`` has shape ``(N, *event)``; ``batch_size`` bounds memory (``None``: one batch).
    Runs without gradients; returns ``inf`` if some ``log q(x_n) = -inf``.
    """
    x = check_tensor(x, "x")
    if x.dim() < 1 or len(x) == 0:
        raise ValueError(f"x: expected a non-empty batch of shape (N, ...), got {tuple(x.shape)}")
    lp = _batched_log_prob(model, x, _check_batch_size(batch_size), "model")
    return float(-lp.mean())


def kl_divergence(
    target: Any,
    model: Any,
    n: int = 10_000,
    generator: torch.Generator | None = None,
    reverse: bool = False,
    batch_size: int | None = 4096,
) -> tuple[float, float]:
    r"""Monte Carlo KL divergence and its standard error, in nats.

    Forward (default): ``KL(p || q) = E_{x~p}[log p(x) - log q(x)]`` from ``n`` samples of the
    ``target`` ``p`` (drawn with ``generator``). Reverse: ``KL(q || p) = E_{x~q}[log q(x) - log
    p(x)]`` from ``n`` samples of the ``model`` ``q`` (its global RNG forked and seeded from
    ``generator`` when one is given). The target's density must be normalised
    (``target.normalized``). Returns ``(mean, std / sqrt(n))`` of the per-sample log-ratios.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise ValueError(f"n: expected an int >= 2, got {n!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator: expected a torch.Generator or None, got {type(generator).__name__}"
        )
    if not getattr(target, "normalized", True):
        raise ValueError(
            f"target: {type(target).__name__} has no normalised log_prob (normalized=False); "
            "the KL divergence needs an exact normalised density"
        )
    batch_size = _check_batch_size(batch_size)
    if reverse:
        sample = getattr(model, "sample", None)
        if not callable(sample):
            raise TypeError(
                f"model: expected an object with a sample method, got {type(model).__name__}"
            )
        device, _ = _placement(model)
        forked = [device] if device is not None and device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=forked):
            if generator is not None:
                torch.manual_seed(int(torch.randint(2**62, (), generator=generator)))
            x = sample(n)
        log_q = _batched_log_prob(model, x, batch_size, "model")
        log_p = _batched_log_prob(target, x.to("cpu"), batch_size, "target")
        ratio = log_q - log_p
    else:
        x = target.sample(n, generator=generator)
        log_p = _batched_log_prob(target, x, batch_size, "target")
        log_q = _batched_log_prob(model, x, batch_size, "model")
        ratio = log_p - log_q
    return float(ratio.mean()), float(ratio.std() / math.sqrt(n))


def bits_per_dim(nll_nats: float, num_dims: int, num_levels: int | None = None) -> float:
    r"""Convert a mean NLL in nats per example into bits per dimension.

    ``bpd = nll / (D ln 2)``. With ``num_levels = L`` the model was trained on dequantised data
    scaled to the unit interval, ``x = (k + u) / L`` with ``k in {0, ..., L-1}`` and
    ``u ~ U[0, 1)^D``; its density on the original integer scale is ``q(x) / L^D``, so
    ``bpd = (nll + D ln L) / (D ln 2) = nll / (D ln 2) + log2 L``. This is the number reported for
    images (e.g. ``L = 256`` for 8-bit pixels; ``L = 17`` for the 8x8 digits).
    """
    if not isinstance(num_dims, int) or isinstance(num_dims, bool) or num_dims < 1:
        raise ValueError(f"num_dims: expected a positive int, got {num_dims!r}")
    if num_levels is not None and (
        not isinstance(num_levels, int) or isinstance(num_levels, bool) or num_levels < 2
    ):
        raise ValueError(f"num_levels: expected an int >= 2 or None, got {num_levels!r}")
    bpd = float(nll_nats) / (num_dims * math.log(2.0))
    return bpd + (math.log2(num_levels) if num_levels is not None else 0.0)


def effective_sample_size(log_weights: Tensor) -> float:
    r"""Kish's effective sample size of importance weights ``w_n = exp(log_weights_n)``.

    ``ESS = (sum w)^2 / sum w^2 = exp(2 logsumexp(log w) - logsumexp(2 log w))``, computed in
    float64 with ``logsumexp`` so huge or tiny weights neither overflow nor underflow. It lies in
    ``[1, N]`` (``N`` for equal weights); weights of ``-inf`` count as zero. Divide by ``N`` for
    the relative ESS.
    """
    lw = check_tensor(log_weights, "log_weights")
    if lw.dim() != 1 or len(lw) == 0:
        raise ValueError(
            f"log_weights: expected a non-empty 1-D tensor, got shape {tuple(lw.shape)}"
        )
    lw = lw.detach().to(torch.float64)
    if bool(torch.isnan(lw).any()) or bool((lw == math.inf).any()):
        raise ValueError("log_weights: contains NaN or +inf")
    if bool((lw == -math.inf).all()):
        raise ValueError("log_weights: all weights are zero (every log weight is -inf)")
    return float(torch.exp(2.0 * torch.logsumexp(lw, 0) - torch.logsumexp(2.0 * lw, 0)))
