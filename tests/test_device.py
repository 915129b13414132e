"""Device selection, seeding, and the same layers on a CUDA device (skipped without one)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from helpers import perturb_

import cflib

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_device_defaults_and_override(monkeypatch):
    monkeypatch.delenv("CFLIB_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert cflib.device().type == expected
    monkeypatch.setenv("CFLIB_DEVICE", "cpu")
    assert cflib.device() == torch.device("cpu")
    if not torch.cuda.is_available():
        monkeypatch.setenv("CFLIB_DEVICE", "cuda")
        with pytest.raises(ValueError, match="CFLIB_DEVICE"):
            cflib.device()


def test_seed_everything_makes_every_stream_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()  # noqa: NPY002

    cflib.seed_everything(123)
    a = draw()
    cflib.seed_everything(123)
    assert draw() == a
    cflib.seed_everything(124)
    assert draw() != a
    with pytest.raises(TypeError, match="seed"):
        cflib.seed_everything(1.5)


def test_outputs_follow_input_dtype():
    for dtype in (torch.float32, torch.float64):
        flow = cflib.CouplingFlow(3, num_layers=2, coupling="spline").to(dtype)
        assert flow.sample(4).dtype == dtype
        assert flow.log_prob(torch.randn(4, 3, dtype=dtype)).dtype == dtype


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("coupling", sorted(cflib.COUPLINGS))
def test_flow_on_cuda_matches_cpu(coupling):
    torch.manual_seed(0)
    flow = perturb_(cflib.CouplingFlow(4, num_layers=4, coupling=coupling).double())
    x = torch.randn(64, 4, dtype=torch.float64)
    cpu = flow.log_prob(x)
    gpu_flow = flow.to("cuda")
    gpu = gpu_flow.log_prob(x.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-8, rtol=1e-8)
    z, _ = gpu_flow.inverse(x.cuda())
    torch.testing.assert_close(gpu_flow(z)[0].cpu(), x, atol=1e-8, rtol=0)
    assert gpu_flow.sample(8).device.type == "cuda"


@cuda
@pytest.mark.cuda
def test_image_layers_on_cuda():
    flow = perturb_(cflib.MultiScaleFlow((1, 8, 8), hidden_channels=8, num_blocks=1)).cuda()
    x = torch.randn(5, 1, 8, 8, device="cuda")
    z, ladj = flow.inverse(x)
    x2, ladj2 = flow(z)
    torch.testing.assert_close(x2, x, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ladj + ladj2, torch.zeros_like(ladj), atol=1e-3, rtol=0)
