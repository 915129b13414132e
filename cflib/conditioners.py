"""Conditioner networks: they map the unchanged part z_a to the parameters theta(z_a).

A coupling stays invertible whatever the conditioner computes, so any network will do. Each one
here zero-initialises its last layer (``zero_init=True``), which makes every coupling start as the
identity map: a stable start with well-scaled gradients.

Shapes:
- :class:`MLP`:        (batch, in_features) -> (batch, out_features)
- :class:`ResNet`:     (batch, in_channels, H, W) -> (batch, out_channels, H, W)
- :class:`Attention`:  (batch, in_features) -> (batch, out_features), each input a token
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["MLP", "Attention", "ResNet"]


def _zero_(layer: nn.Module) -> None:
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)


class MLP(nn.Sequential):
    """Fully connected network ``in -> hidden[0] -> ... -> out`` with ``activation`` in between."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.ReLU,
        zero_init: bool = True,
    ):
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"MLP: in_features and out_features must be >= 1, got {in_features}, {out_features}"
            )
        sizes = [in_features, *hidden, out_features]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), activation()]
        super().__init__(*layers[:-1])
        if zero_init:
            _zero_(self[-1])
        self.in_features, self.out_features = in_features, out_features


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class ResNet(nn.Module):
    """Small residual CNN for images: 3x3 conv in, ``num_blocks`` residual blocks, 3x3 conv out.

    No batch normalisation, so the conditioner (and with it the coupling) computes the same
    function in training and evaluation mode and for any batch composition.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        num_blocks: int = 2,
        zero_init: bool = True,
    ):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden_channels, 3, padding=1),
            *[_ResidualBlock(hidden_channels) for _ in range(num_blocks)],
            nn.ReLU(),
            nn.Conv2d(hidden_channels, out_channels, 3, padding=1),
        )
        if zero_init:
            _zero_(self.net[-1])
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Attention(nn.Module):
    """Transformer conditioner: each of the ``in_features`` inputs is a token.

    token_i = x_i * w + p_i (value embedding plus a learned position embedding), then
    ``num_layers`` self-attention encoder layers, then a linear read-out of all tokens.
    Suits inputs that are sequences or sets of interacting coordinates.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        embed_dim: int = 32,
        num_heads: int = 2,
        num_layers: int = 1,
        zero_init: bool = True,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(
                f"Attention: embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        self.value = nn.Linear(1, embed_dim)
        self.position = nn.Parameter(torch.randn(in_features, embed_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            embed_dim, num_heads, dim_feedforward=2 * embed_dim, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.readout = nn.Linear(in_features * embed_dim, out_features)
        if zero_init:
            _zero_(self.readout)
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.value(x.unsqueeze(-1)) + self.position  # (batch, in_features, embed_dim)
        # The plain ("math") attention kernel: it has derivatives of every order (the fused CPU
        # kernel's backward cannot be differentiated again), and for a few tokens it is as fast.
        with sdpa_kernel(SDPBackend.MATH):
            encoded = self.encoder(tokens)
        return self.readout(encoded.flatten(1))
