"""Plots: the right number of axes and images, and the plotted data equal what was passed."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from cflib.plots import (
    density_grid,
    plot_density,
    plot_jacobian_pattern,
    plot_layers,
    plot_mask,
    plot_samples,
)
from cflib.targets import EightGaussians, UniformDisk
from cflib.transforms import Transform


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class Shear(Transform):
    """y = (x1, x2 + a x1) (a stand-in layer, log-det 0)."""

    def __init__(self, a: float):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return torch.stack([x[:, 0], x[:, 1] + self.a * x[:, 0]], -1), x.new_zeros(len(x))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return torch.stack([y[:, 0], y[:, 1] - self.a * y[:, 0]], -1), y.new_zeros(len(y))


class Swap(Transform):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.flip(-1), x.new_zeros(len(x))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return y.flip(-1), y.new_zeros(len(y))


class StandInFlow(nn.Module):
    def __init__(self):
        super().__init__()
        self.transforms = nn.ModuleList([Shear(0.5), Swap(), Shear(-1.5)])


def test_plot_density_shows_exp_log_prob_on_cell_centres():
    target = EightGaussians()
    ax = plot_density(target, (-3, 3), resolution=40, title="8 gaussians")
    assert len(ax.figure.axes) == 1 and len(ax.images) == 1
    image = ax.images[0]
    c = -3 + (np.arange(40) + 0.5) * 6 / 40
    gx, gy = np.meshgrid(c, c)
    pts = torch.tensor(np.stack([gx.ravel(), gy.ravel()], -1), dtype=torch.float32)
    expected = torch.exp(target.log_prob(pts)).numpy().reshape(40, 40)
    np.testing.assert_allclose(np.asarray(image.get_array()), expected, rtol=1e-5)
    assert tuple(image.get_extent()) == (-3, 3, -3, 3)
    assert image.origin == "lower" and ax.get_title() == "8 gaussians"


def test_plot_density_accepts_callables_rectangles_log_scale_and_masks_minus_inf():
    fig, axes = plt.subplots(1, 2)
    disk = UniformDisk(1.0)
    ax = plot_density(disk.log_prob, ((-2, 2), (-1, 3)), ax=axes[0], resolution=20, log=True)
    assert ax is axes[0] and len(fig.axes) == 2
    data = ax.images[0].get_array()
    assert tuple(ax.images[0].get_extent()) == (-2, 2, -1, 3)
    assert data.mask.any() and not data.mask.all()  # outside the disk: blank
    assert np.allclose(data.compressed(), -math.log(math.pi))
    xs, ys, lp = density_grid(disk, ((-2, 2), (-1, 3)), resolution=20)
    assert np.array_equal(np.isneginf(lp), data.mask)
    assert xs[0] == pytest.approx(-1.9) and ys[0] == pytest.approx(-0.9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_plot_density_of_a_model_uses_its_dtype(dtype: torch.dtype):
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros((), dtype=dtype))

        def log_prob(self, x: Tensor) -> Tensor:
            assert x.dtype == dtype
            return -0.5 * (x**2).sum(-1) - math.log(2 * math.pi) + self.w

    ax = plot_density(Model(), (-2, 2), resolution=10)
    grid = np.asarray(ax.images[0].get_array())
    c = -2 + (np.arange(10) + 0.5) * 0.4
    expected = np.exp(-0.5 * (c[None, :] ** 2 + c[:, None] ** 2)) / (2 * math.pi)
    np.testing.assert_allclose(grid, expected, rtol=1e-6)


def test_plot_density_rejects_bad_arguments():
    with pytest.raises(ValueError, match="bounds"):
        plot_density(UniformDisk(), (1, -1))
    with pytest.raises(ValueError, match="bounds"):
        plot_density(UniformDisk(), "square")
    with pytest.raises(TypeError, match="log_prob"):
        plot_density(3, (-1, 1))
    with pytest.raises(ValueError, match="resolution"):
        plot_density(UniformDisk(), (-1, 1), resolution=1)
    with pytest.raises(TypeError, match="ax"):
        plot_density(UniformDisk(), (-1, 1), ax="left")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_plot_samples_plots_the_points(dtype: torch.dtype):
    x = torch.randn(100, 2, dtype=dtype)
    ax = plot_samples(x, bounds=(-4, 4), title="data")
    assert len(ax.collections) == 1
    np.testing.assert_allclose(ax.collections[0].get_offsets(), x.double().numpy(), rtol=1e-7)
    assert ax.get_xlim() == (-4, 4) and ax.get_title() == "data"
    ax2 = plot_samples(x.numpy(), ax=ax)
    assert ax2 is ax and len(ax.collections) == 2
    with pytest.raises(ValueError, match="x"):
        plot_samples(torch.zeros(5, 3))
    with pytest.raises(TypeError, match="x"):
        plot_samples([[0.0, 1.0]])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_plot_layers_shows_each_layer_with_fixed_colours(dtype: torch.dtype):
    flow = StandInFlow().to(dtype)
    z = torch.randn(200, 2, dtype=dtype, generator=torch.Generator().manual_seed(0))
    fig = plot_layers(flow, z)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    x, expected = z, [z]
    with torch.no_grad():
        for t in flow.transforms:
            x, _ = t(x)
            expected.append(x)
    for ax, pts in zip(fig.axes, expected, strict=True):
        np.testing.assert_array_equal(ax.collections[0].get_offsets(), pts.double().numpy())
    # The colouring is the base point's angle, the same in every panel.
    colours = [ax.collections[0].get_array() for ax in fig.axes]
    np.testing.assert_allclose(colours[0], np.arctan2(z[:, 1].numpy(), z[:, 0].numpy()), rtol=1e-6)
    assert all(np.array_equal(colours[0], c) for c in colours)
    assert fig.axes[0].get_title() == "base $z$" and "Swap" in fig.axes[2].get_title()


def test_plot_layers_selects_layers_and_takes_a_list_of_transforms():
    flow = StandInFlow()
    z = torch.randn(50, 2)
    fig = plot_layers(flow, z, layers=[2], bounds=(-5, 5))
    assert len(fig.axes) == 2 and fig.axes[1].get_xlim() == (-5, 5)
    with torch.no_grad():
        x = z
        for t in flow.transforms:
            x, _ = t(x)
    np.testing.assert_allclose(fig.axes[1].collections[0].get_offsets(), x.numpy(), rtol=1e-6)
    fig2 = plot_layers(list(flow.transforms), z, color=torch.arange(50.0))
    assert len(fig2.axes) == 4
    np.testing.assert_array_equal(fig2.axes[3].collections[0].get_array(), np.arange(50.0))
    with pytest.raises(ValueError, match="layers"):
        plot_layers(flow, z, layers=[3])
    with pytest.raises(ValueError, match="z"):
        plot_layers(flow, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="color"):
        plot_layers(flow, z, color=torch.zeros(3))


def test_plot_jacobian_pattern_shows_the_matrix_with_labels():
    pattern = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=torch.bool)
    ax = plot_jacobian_pattern(pattern, title="J")
    assert len(ax.images) == 1
    np.testing.assert_array_equal(
        np.asarray(ax.images[0].get_array()), pattern.numpy().astype(float)
    )
    assert [t.get_text() for t in ax.get_xticklabels()] == ["$z_{1}$", "$z_{2}$", "$z_{3}$"]
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "$y_{4}$"
    # Numeric input: nonzero means "depends".
    ax = plot_jacobian_pattern(np.array([[0.0, -2.5], [1e-3, 0.0]]), row_label="x", col_label="u")
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), [[0, 1], [1, 0]])
    assert ax.get_xticklabels()[1].get_text() == "$u_{2}$"
    with pytest.raises(ValueError, match="pattern"):
        plot_jacobian_pattern(torch.ones(3))


def test_plot_mask_shows_the_mask():
    mask = (torch.arange(6)[:, None] + torch.arange(4)[None, :]) % 2 == 0
    fig, axes = plt.subplots(1, 2)
    plot_mask(mask, ax=axes[0], title="checkerboard")
    plot_mask(~mask.numpy(), ax=axes[1])
    assert len(fig.axes) == 2 and all(len(ax.images) == 1 for ax in axes)
    np.testing.assert_array_equal(
        np.asarray(axes[0].images[0].get_array()), mask.numpy().astype(float)
    )
    np.testing.assert_array_equal(
        np.asarray(axes[1].images[0].get_array()), (~mask).numpy().astype(float)
    )
    assert axes[0].get_title() == "checkerboard"
    with pytest.raises(ValueError, match="mask"):
        plot_mask(torch.ones(1, 4, 4))
