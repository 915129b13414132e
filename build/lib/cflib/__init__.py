"""cflib: coupling layers for normalizing flows, exact and tested.

Every invertible layer is a ``torch.nn.Module`` with ``forward(x) -> (y, ladj)`` and
``inverse(y) -> (x, ladj)``; ``ladj`` is the log-absolute-determinant of the Jacobian, shape (batch,).

Preprocessing layers (``Logit``, ``Standardize``, ``Whiten``, ``Log``, ``ActNorm``) have exact log-dets.
Submodules: ``cflib.targets`` (2-D densities, energies, digits), ``cflib.metrics``, ``cflib.splines``;
``cflib.plots`` (matplotlib) and ``cflib.symbolic`` (sympy) are imported on demand.
"""

from cflib import metrics, targets
from cflib.autoregressive import MADE, MaskedAutoregressive
from cflib.conditioners import MLP, Attention, ResNet
from cflib.couplings import (
    SCALES,
    AdditiveCoupling,
    AffineCoupling,
    Coupling,
    PiecewiseLinearCoupling,
    SplineCoupling,
)
from cflib.flow import COUPLINGS, AutoregressiveFlow, CouplingFlow, Flow, MultiScaleFlow
from cflib.masks import channel_mask, checkerboard_mask
from cflib.normalization import ActNorm
from cflib.permutations import (
    InvertibleConv1x1,
    Permutation,
    RandomPermutation,
    ReversePermutation,
)
from cflib.preprocess import Logit, dequantize
from cflib.reshape import FactorOut, Squeeze
from cflib.splines import piecewise_linear_spline, rational_quadratic_spline
from cflib.tabular import Log, Standardize, Whiten
from cflib.train import train
from cflib.transforms import Compose, Inverse, Transform
from cflib.utils import device, seed_everything

__all__ = [
    "COUPLINGS",
    "MADE",
    "MLP",
    "SCALES",
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "Attention",
    "AutoregressiveFlow",
    "Compose",
    "Coupling",
    "CouplingFlow",
    "FactorOut",
    "Flow",
    "Inverse",
    "InvertibleConv1x1",
    "Log",
    "Logit",
    "MaskedAutoregressive",
    "MultiScaleFlow",
    "Permutation",
    "PiecewiseLinearCoupling",
    "RandomPermutation",
    "ResNet",
    "ReversePermutation",
    "SplineCoupling",
    "Squeeze",
    "Standardize",
    "Transform",
    "Whiten",
    "channel_mask",
    "checkerboard_mask",
    "dequantize",
    "device",
    "metrics",
    "piecewise_linear_spline",
    "rational_quadratic_spline",
    "seed_everything",
    "targets",
    "train",
]
__version__ = "0.1.0"
