"""Maximum-likelihood training with Adam, reproducible for a fixed seed."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

__all__ = ["train"]


def _positive_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return value


def _batches(data: Any, batch_size: int, generator: torch.Generator) -> Callable[[], Tensor | None]:
    """A function returning the next minibatch of ``data`` (see :func:`train`)."""
    if data is None:
        return lambda: None
    if isinstance(data, Tensor):
        if data.dim() < 1 or len(data) == 0:
            raise ValueError(f"data: expected a non-empty tensor (N, ...), got {tuple(data.shape)}")
        if not data.is_floating_point():
            raise TypeError(f"data: expected a floating-point tensor, got dtype {data.dtype}")
        return lambda: data[
            torch.randint(len(data), (batch_size,), generator=generator).to(data.device)
        ]
    sample = getattr(data, "sample", data)
    if not callable(sample):
        raise TypeError(
            "data: expected a tensor, a target with sample(n, generator=...), "
            f"a callable sampler(n, generator=...) or None, got {type(data).__name__}"
        )
    return lambda: sample(batch_size, generator=generator)


def train(
    model: nn.Module,
    data: Any,
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    clip_grad: float | None = None,
    progress: bool = True,
    seed: int | None = None,
    callback: Callable[[int, float, nn.Module], bool | None] | None = None,
    loss: Callable[[nn.Module, Tensor | None], Tensor] | None = None,
) -> list[float]:
    r"""Fit ``model`` by minimising ``loss`` with Adam for ``steps`` steps; return the losses.

    The default loss is the negative log-likelihood ``-mean_n log q(x_n)`` of a minibatch.

    Args:
        model: an ``nn.Module``; with the default loss it needs ``log_prob(x) -> (batch,)``.
        data: a tensor ``(N, ...)`` (minibatches of ``batch_size`` rows drawn uniformly with
            replacement), a target with ``sample(n, generator=...)``, a callable
            ``sampler(n, generator=...)``, or ``None`` (only with a ``loss`` that draws its own
            samples, e.g. a reverse KL). Batches move to the model's device and dtype.
        steps: number of optimisation steps.
        batch_size: examples per step.
        lr, weight_decay: Adam's learning rate and L2 penalty.
        clip_grad: clip the gradients' total 2-norm to this value (``None``: no clipping).
        progress: show a tqdm progress bar (stderr).
        seed: seeds the minibatch generator and, for the duration of the call, torch's global
            RNG (restored afterwards), so two runs from the same initial model give identical
            losses. ``None`` draws the minibatch seed from torch's global RNG.
        callback: ``callback(step, loss, model)`` after every step; returning ``True`` stops.
        loss: ``loss(model, batch) -> scalar tensor`` replacing the NLL.

    Raises:
        FloatingPointError: when the loss is NaN or infinite, naming the step.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: has no trainable parameters")
    steps = _positive_int(steps, "steps")
    batch_size = _positive_int(batch_size, "batch_size")
    if not lr > 0:
        raise ValueError(f"lr: expected a positive number, got {lr}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay: expected a non-negative number, got {weight_decay}")
    if clip_grad is not None and not clip_grad > 0:
        raise ValueError(f"clip_grad: expected a positive number or None, got {clip_grad}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise TypeError(f"seed: expected an int or None, got {type(seed).__name__}")
    if data is None and loss is None:
        raise ValueError("data: None is only allowed together with a loss function")
    if loss is None:
        loss = lambda m, batch: -m.log_prob(batch).mean()

    device, dtype = params[0].device, params[0].dtype
    forked = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(
            int(torch.randint(2**62, ())) if seed is None else seed
        )
        next_batch = _batches(data, batch_size, generator)
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        was_training = model.training
        model.train()
        losses: list[float] = []
        try:
            with tqdm(total=steps, disable=not progress, desc="train", leave=False) as bar:
                for step in range(steps):
                    batch = next_batch()
                    if batch is not None:
                        batch = batch.to(device=device, dtype=dtype)
                    value = loss(model, batch)
                    if not isinstance(value, Tensor) or value.numel() != 1:
                        raise TypeError("loss: expected a scalar tensor from loss(model, batch)")
                    current = float(value.detach())
                    if not math.isfinite(current):
                        raise FloatingPointError(
                            f"train: the loss is {current} at step {step} (of {steps}); lower lr, "
                            "set clip_grad, or check the data and the model's log_prob"
                        )
                    optimizer.zero_grad(set_to_none=True)
                    value.backward()
                    if clip_grad is not None:
                        nn.utils.clip_grad_norm_(params, clip_grad)
                    optimizer.step()
                    losses.append(current)
                    bar.update(1)
                    if step % 25 == 0 or step == steps - 1:
                        bar.set_postfix(loss=f"{current:.4f}", refresh=False)
                    if callback is not None and callback(step, current, model) is True:
                        break
        finally:
            model.train(was_training)
    return losses
