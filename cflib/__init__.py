"""cflib: coupling layers for normalizing flows, exact and tested.

Every invertible layer is a ``torch.nn.Module`` with ``forward(x) -> (y, ladj)`` and
``inverse(y) -> (x, ladj)``; ``ladj`` is the log-absolute-determinant of the Jacobian, shape (batch,).
"""

from cflib.transforms import Compose, Inverse, Transform
from cflib.utils import device, seed_everything

__all__ = ["Compose", "Inverse", "Transform", "device", "seed_everything"]
__version__ = "0.1.0"
