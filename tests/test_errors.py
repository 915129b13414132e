"""Bad input raises a clear ValueError/TypeError that names the argument."""

from __future__ import annotations

import pytest
import torch

from cflib import (
    AffineCoupling,
    CouplingFlow,
    FactorOut,
    InvertibleConv1x1,
    MultiScaleFlow,
    RandomPermutation,
    SplineCoupling,
    Squeeze,
    channel_mask,
    checkerboard_mask,
)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: channel_mask(1), ValueError, "dim"),
        (lambda: channel_mask(2.5), TypeError, "dim"),
        (lambda: checkerboard_mask(0, 4), ValueError, "height"),
        (lambda: checkerboard_mask(1, 1), ValueError, "2 pixels"),
        (lambda: AffineCoupling(1), ValueError, "at least 2"),
        (lambda: AffineCoupling((3, 4)), ValueError, "shape"),
        (lambda: AffineCoupling(4, mask=torch.ones(3, dtype=torch.bool)), ValueError, "mask"),
        (lambda: AffineCoupling(4, mask=torch.ones(4, dtype=torch.bool)), ValueError, "all True"),
        (lambda: AffineCoupling(4, mask=torch.tensor([0.0, 0.5, 1.0, 1.0])), ValueError, "mask"),
        (lambda: AffineCoupling(4, mask=[True, False, True, False]), TypeError, "mask"),
        (lambda: AffineCoupling((2, 4, 4), mask=checkerboard_mask(3, 3)), ValueError, "mask"),
        (lambda: AffineCoupling(4, scale="cube"), ValueError, "scale"),
        (lambda: AffineCoupling(4, scale_bound=-1.0), ValueError, "scale_bound"),
        (lambda: AffineCoupling(4, conditioner=42), TypeError, "conditioner"),
        (lambda: AffineCoupling(4, conditioner=lambda i, o: "net"), TypeError, "conditioner"),
        (lambda: AffineCoupling((2, 4, 4), context_dim=3), ValueError, "context_dim"),
        (lambda: SplineCoupling(4, num_bins=1), ValueError, "num_bins"),
        (lambda: CouplingFlow(1), ValueError, "dim"),
        (lambda: CouplingFlow(4, num_layers=0), ValueError, "num_layers"),
        (lambda: CouplingFlow(4, coupling="quadratic"), ValueError, "coupling"),
        (lambda: CouplingFlow(4, permutation="shuffle"), ValueError, "permutation"),
        (lambda: CouplingFlow(4, conditioner="gnn"), ValueError, "conditioner"),
        (lambda: MultiScaleFlow((1, 6, 6), num_scales=3), ValueError, "divisible"),
        (lambda: RandomPermutation(0), ValueError, "dim"),
        (lambda: InvertibleConv1x1(0), ValueError, "channels"),
        (lambda: FactorOut(torch.nn.Linear(2, 2), split=1), TypeError, "inner"),
    ],
)
def test_bad_construction(make, error, match):
    with pytest.raises(error, match=match):
        make()


LAYER_INPUTS = [
    # (layer factory, bad input, error, message)
    (lambda: AffineCoupling(4), torch.randn(3, 5), ValueError, r"x: expected shape \(batch, 4\)"),
    (lambda: AffineCoupling(4), torch.randn(4), ValueError, "2 dims"),
    (lambda: AffineCoupling(4), torch.ones(3, 4, dtype=torch.long), TypeError, "floating-point"),
    (lambda: AffineCoupling(4), [[0.0] * 4], TypeError, "torch.Tensor"),
    (
        lambda: AffineCoupling(4),
        torch.tensor([[0.0, float("nan"), 1.0, 2.0]]),
        ValueError,
        "non-finite",
    ),
    (
        lambda: SplineCoupling(4),
        torch.tensor([[0.0, float("inf"), 1.0, 2.0]]),
        ValueError,
        "non-finite",
    ),
    (
        lambda: AffineCoupling((2, 4, 4), mask=checkerboard_mask(4, 4)),
        torch.randn(3, 2, 4, 5),
        ValueError,
        "shape",
    ),
    (lambda: Squeeze(), torch.randn(2, 1, 5, 4), ValueError, "even height and width"),
    (lambda: Squeeze(), torch.randn(2, 16), ValueError, r"\(batch, C, H, W\)"),
    (lambda: RandomPermutation(4), torch.randn(2, 3), ValueError, "4 features"),
    (lambda: InvertibleConv1x1(3), torch.randn(2, 4, 2, 2), ValueError, "3 features/channels"),
    (
        lambda: CouplingFlow(3).log_prob,
        torch.randn(5, 2),
        ValueError,
        r"x: expected shape \(\.\.\., 3\)",
    ),
]


@pytest.mark.parametrize(("make", "bad", "error", "match"), LAYER_INPUTS)
def test_bad_input(make, bad, error, match):
    layer = make()
    with pytest.raises(error, match=match):
        layer(bad)


def test_bad_inverse_input_names_y():
    with pytest.raises(ValueError, match="y: expected shape"):
        AffineCoupling(4).inverse(torch.randn(2, 3))


def test_conditioner_with_wrong_output_is_reported():
    layer = AffineCoupling(4, conditioner=torch.nn.Linear(2, 3))
    with pytest.raises(
        ValueError, match=r"conditioner: returned shape \(5, 3\), expected \(5, 4\)"
    ):
        layer(torch.randn(5, 4))


def test_context_errors():
    flow = CouplingFlow(2, num_layers=2, context_dim=3)
    with pytest.raises(ValueError, match="context"):
        flow.log_prob(torch.randn(4, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match="batch size"):
        flow.log_prob(torch.randn(4, 2), torch.randn(5, 3))
    with pytest.raises(ValueError, match="not conditional"):
        CouplingFlow(2).log_prob(torch.randn(4, 2), torch.randn(4, 3))


def test_finite_checks_count_bad_values_and_survive_overflowing_sums():
    from cflib.validation import check_all_finite, check_finite

    huge = torch.full((4,), 3e38)  # finite float32 values whose sum overflows to inf
    assert check_finite(huge, "h") is huge
    check_all_finite({"h": huge, "x": torch.zeros(3)})
    bad = torch.tensor([1.0, float("nan"), float("inf"), 2.0])
    with pytest.raises(ValueError, match=r"x: contains 2 non-finite value\(s\)"):
        check_finite(bad, "x")
    with pytest.raises(ValueError, match=r"^b: contains 2 non-finite"):
        check_all_finite({"a": huge, "b": bad, "c": bad})


def test_a_coupling_without_a_map_says_so():
    from cflib.couplings import Coupling

    class NoMap(Coupling):
        num_params = 1

    with pytest.raises(NotImplementedError, match="NoMap does not implement transform"):
        NoMap(2)(torch.randn(3, 2))
