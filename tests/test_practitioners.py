"""cflib driven the way practitioners drive it: derivatives of every order (float64, against finite
differences and full Jacobians), torch.func, torch.compile and torch.export, autocast and half
precision, the Distribution API (expand, condition) and Pyro."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Distribution
from torch.func import functional_call, jacrev, vmap

import cflib
from cflib import AffineCoupling, CouplingFlow, SplineCoupling, checkerboard_mask

F64 = torch.float64
KINDS = ["additive", "affine", "spline", "piecewise_linear"]
CONDITIONERS = {
    "relu": "mlp",  # the default: the hand-written ReLU network
    "tanh": lambda i, o: cflib.MLP(i, o, hidden=(8, 8), activation=nn.Tanh),
    "attention": "attention",
}


@pytest.fixture(autouse=True)
def _validation_on():
    """torch.compile switches Distribution validation off for the whole process; these tests set
    it themselves and restore it."""
    before = Distribution._validate_args
    Distribution.set_default_validate_args(True)
    yield
    Distribution.set_default_validate_args(before)


def _perturb(module: nn.Module, seed: int = 0, scale: float = 0.3) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _flow(kind: str, conditioner="mlp", dim: int = 3) -> CouplingFlow:
    torch.manual_seed(0)
    flow = CouplingFlow(dim, num_layers=2, coupling=kind, hidden_dim=8, conditioner=conditioner)
    return _perturb(flow.double())


def _points(n: int, dim: int = 3, seed: int = 1) -> torch.Tensor:
    return 0.8 * torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _score(flow, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    x = x.detach().requires_grad_()
    (g,) = torch.autograd.grad(flow.log_prob(x).sum(), x, create_graph=create_graph)
    return g


# ---------------------------------------------------------------- derivatives of every order


@pytest.mark.parametrize("conditioner", CONDITIONERS)
@pytest.mark.parametrize("kind", KINDS)
def test_hessian_of_log_prob_matches_finite_differences_of_the_score(kind, conditioner):
    flow = _flow(kind, CONDITIONERS[conditioner])
    x = _points(1)
    xr = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(flow.log_prob(xr).sum(), xr, create_graph=True)
    hess = torch.stack(
        [torch.autograd.grad(g[0, i], xr, retain_graph=True)[0][0] for i in range(3)]
    )
    eps, eye = 1e-6, torch.eye(3, dtype=F64)
    fd = torch.stack([(_score(flow, x + eps * e) - _score(flow, x - eps * e))[0] for e in eye])
    fd = fd / (2 * eps)
    assert fd.abs().max() > 0.05  # a Hessian that is not trivially zero
    torch.testing.assert_close(hess, fd, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(hess, hess.T, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_parameter_gradient_of_a_score_penalty_matches_finite_differences(kind):
    """Score matching / gradient penalty: d/dtheta |grad_x log p(x)|^2, along a random
    direction of one conditioner's parameters, against central differences."""
    flow = _flow(kind)
    x = _points(4)
    weight = next(flow.parameters())  # the first conditioner's first weight
    direction = torch.randn(weight.shape, generator=torch.Generator().manual_seed(5), dtype=F64)

    def penalty() -> torch.Tensor:
        return _score(flow, x, create_graph=True).square().sum()

    (grad,) = torch.autograd.grad(penalty(), weight)
    eps, values = 1e-6, []
    with torch.no_grad():
        for sign in (1, -1):
            weight.add_(sign * eps * direction)
            with torch.enable_grad():
                values.append(penalty().detach())
            weight.sub_(sign * eps * direction)
    fd = (values[0] - values[1]) / (2 * eps)
    assert fd.abs() > 1e-3
    torch.testing.assert_close((grad * direction).sum(), fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("conditioner", CONDITIONERS)
@pytest.mark.parametrize("kind", KINDS)
def test_vmap_jacrev_of_forward_gives_the_log_det(kind, conditioner):
    flow = _flow(kind, CONDITIONERS[conditioner])
    z = _points(5)
    jac = vmap(jacrev(lambda v: flow(v[None])[0][0]))(z)
    _, ladj = flow(z)
    torch.testing.assert_close(torch.linalg.slogdet(jac)[1], ladj, rtol=1e-10, atol=1e-10)
    jac_inv = vmap(jacrev(lambda v: flow.inverse(v[None])[0][0]))(z)
    torch.testing.assert_close(torch.linalg.slogdet(jac_inv)[1], flow.inverse(z)[1])


@pytest.mark.parametrize("make", [AffineCoupling, SplineCoupling])
def test_image_coupling_with_resnet_conditioner_second_derivatives(make):
    """The ResNet conditioner of a checkerboard coupling: Hessian in x of |y|^2 + log-det (a
    Gaussian log-density through the layer) against finite differences of its gradient."""
    torch.manual_seed(0)
    layer = _perturb(make((1, 2, 2), mask=checkerboard_mask(2, 2), hidden_dim=4).double())
    x = _points(1, 4).view(1, 1, 2, 2)

    def grad_ladj(v: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
        v = v.detach().requires_grad_() if not create_graph else v
        y, ladj = layer(v)
        (g,) = torch.autograd.grad(y.square().sum() + ladj.sum(), v, create_graph=create_graph)
        return g.flatten()

    xr = x.clone().requires_grad_()
    g = grad_ladj(xr, create_graph=True)
    hess = torch.stack(
        [torch.autograd.grad(g[i], xr, retain_graph=True)[0].flatten() for i in range(4)]
    )
    eps, eye = 1e-6, torch.eye(4, dtype=F64).view(4, 1, 1, 2, 2)
    fd = torch.stack([grad_ladj(x + eps * e) - grad_ladj(x - eps * e) for e in eye]) / (2 * eps)
    assert fd.abs().max() > 1e-3
    torch.testing.assert_close(hess, fd, rtol=1e-5, atol=1e-6)


def test_func_grad_over_parameters_matches_autograd():
    flow = _flow("spline")
    x = _points(6)
    params = dict(flow.named_parameters())
    loss = lambda p: functional_call(flow, p, (x,), {}, strict=False)[1].sum()
    grads = torch.func.grad(loss)(params)
    expected = torch.autograd.grad(flow(x)[1].sum(), list(params.values()))
    for name, e in zip(params, expected, strict=True):
        torch.testing.assert_close(grads[name], e, rtol=1e-10, atol=1e-12)
    lp = vmap(lambda v: flow.log_prob(v[None])[0])(x)
    torch.testing.assert_close(lp, flow.log_prob(x))


def test_hand_written_functions_under_torch_func():
    """Called directly (not through a coupling, which steps aside), the autograd Functions work
    under vmap(jacrev(...)) too (setup_context and a generated vmap rule)."""
    from cflib.fast import ReluMLP

    g = torch.Generator().manual_seed(0)
    w1, b1 = torch.randn(5, 3, generator=g, dtype=F64), torch.randn(5, generator=g, dtype=F64)
    w2, b2 = torch.randn(2, 5, generator=g, dtype=F64), torch.randn(2, generator=g, dtype=F64)
    x = torch.randn(4, 3, generator=g, dtype=F64)
    f = lambda v: ReluMLP.apply(v[None], w1, b1, w2, b2)[:, 0]
    plain = lambda v: torch.relu(v @ w1.T + b1) @ w2.T + b2
    torch.testing.assert_close(vmap(jacrev(f))(x), vmap(jacrev(plain))(x))


# ---------------------------------------------------------------- validation


def test_checks_name_the_users_argument_and_follow_validate_args():
    flow = CouplingFlow(3, num_layers=2, coupling="spline")
    bad = torch.tensor([[0.0, float("nan"), 1.0]])
    with pytest.raises(ValueError, match=r"^x: contains 1 non-finite"):
        flow.log_prob(bad)
    with pytest.raises(ValueError, match=r"^z: contains 1 non-finite"):
        flow(bad)
    with pytest.raises(
        TypeError, match=r"x: expected dtype torch.float32 \(the flow's\), got torch.float64"
    ):
        flow.log_prob(bad.double())
    quiet = CouplingFlow(3, num_layers=2, coupling="spline", validate_args=False)
    assert torch.isnan(quiet.log_prob(bad)).all()
    Distribution.set_default_validate_args(False)
    assert torch.isnan(flow.log_prob(bad)).all()
    # a layer inside a flow trusts the flow's check: no check of its own
    assert not flow.transforms[0].checks_values


def test_compile_fullgraph_and_export():
    torch.manual_seed(0)
    flow = _perturb(CouplingFlow(4, num_layers=2, coupling="spline", hidden_dim=16), scale=0.1)
    x = torch.randn(32, 4)
    compiled = torch.compile(flow.log_prob, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x), flow.log_prob(x))

    class LogProb(nn.Module):
        def __init__(self, flow):
            super().__init__()
            self.flow = flow

        def forward(self, x):
            return self.flow.log_prob(x)

    exported = torch.export.export(LogProb(flow), (x,))
    torch.testing.assert_close(exported.module()(x), flow.log_prob(x))
    exported = torch.export.export(flow, (x,))
    torch.testing.assert_close(exported.module()(x)[0], flow(x)[0])


def test_compiled_training_step_has_no_graph_break():
    """The loss compiled in one graph (fullgraph), its backward compiled by AOTAutograd."""
    torch.manual_seed(0)
    flow = _perturb(CouplingFlow(2, num_layers=2, coupling="spline", hidden_dim=8), scale=0.1)
    x = torch.randn(16, 2)
    loss_fn = lambda: -flow.log_prob(x).mean()
    loss = torch.compile(loss_fn, fullgraph=True, backend="aot_eager")()
    loss.backward()
    grads = [p.grad.clone() for p in flow.parameters()]
    flow.zero_grad()
    expected = loss_fn()
    expected.backward()
    torch.testing.assert_close(loss, expected)
    for g, p in zip(grads, flow.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)


# ---------------------------------------------------------------- mixed precision


@pytest.mark.parametrize("kind", KINDS)
def test_bf16_autocast_log_prob_sample_and_training_step(kind):
    torch.manual_seed(0)
    flow = _perturb(CouplingFlow(4, num_layers=2, coupling=kind, hidden_dim=16), scale=0.1)
    x = torch.randn(64, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lp = flow.log_prob(x)
        samples = flow.sample(8)
        loss = -lp.mean()
    loss.backward()
    assert lp.dtype == samples.dtype == torch.float32
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in flow.parameters())
    torch.testing.assert_close(lp, flow.log_prob(x), rtol=0.02, atol=0.05)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("kind", ["spline", "piecewise_linear"])
def test_half_precision_spline_flows_compute_the_spline_in_float32(kind, dtype):
    torch.manual_seed(0)
    flow = _perturb(CouplingFlow(4, num_layers=2, coupling=kind, hidden_dim=16), scale=0.1)
    x = torch.randn(64, 4)
    half = CouplingFlow(4, num_layers=2, coupling=kind, hidden_dim=16).to(dtype)
    half.load_state_dict(flow.state_dict())
    lp = half.log_prob(x.to(dtype))
    assert lp.dtype == dtype and half.sample(3).dtype == dtype
    torch.testing.assert_close(lp.float(), flow.log_prob(x), rtol=0.05, atol=0.2)


# ---------------------------------------------------------------- the Distribution API


def test_expand_mixture_and_independent():
    torch.manual_seed(0)
    flow = _perturb(CouplingFlow(2, num_layers=2, hidden_dim=8), scale=0.1)
    x = torch.randn(5, 2)
    expanded = flow.expand((3,))
    assert expanded.batch_shape == (3,) and expanded.sample((4,)).shape == (4, 3, 2)
    torch.testing.assert_close(
        expanded.log_prob(x[:, None].expand(5, 3, 2)), flow.log_prob(x)[:, None].expand(5, 3)
    )
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(3)), flow.expand((3,))
    )
    torch.testing.assert_close(mix.log_prob(x), flow.log_prob(x), rtol=1e-5, atol=1e-5)
    ind = torch.distributions.Independent(flow.expand((3,)), 1)
    assert ind.batch_shape == () and ind.event_shape == (3, 2)
    torch.testing.assert_close(ind.log_prob(x[:3]), flow.log_prob(x[:3]).sum())


def test_condition_binds_a_context_with_its_batch_shape():
    torch.manual_seed(0)
    flow = _perturb(CouplingFlow(3, num_layers=2, hidden_dim=8, context_dim=2), scale=0.2)
    context = torch.randn(5, 2)
    d = flow.condition(context)
    assert d.batch_shape == (5,) and d.event_shape == (3,)
    assert d.sample((2,)).shape == (2, 5, 3) and flow.sample((2,), context=context).shape == (
        2,
        5,
        3,
    )
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(d.log_prob(x), flow.log_prob(x, context.expand(2, 5, 2)))
    # each batch element is the flow conditioned on its own context vector
    torch.testing.assert_close(d.log_prob(x)[:, 1], flow.condition(context[1]).log_prob(x[:, 1]))
    assert d.expand((4, 5)).sample().shape == (4, 5, 3)
    with pytest.raises(ValueError, match="context: this flow is not conditional"):
        CouplingFlow(3).condition(context)


pyro = pytest.importorskip("pyro")


def test_pyro_sample_and_plates():
    """``pyro.sample`` calls the flow with no input: a sample. (Pyro broadcasts only its own
    distribution classes over a plate; inside one, ``flow.expand`` gives the batch shape.)"""
    flow = CouplingFlow(2, num_layers=2, hidden_dim=8)
    assert pyro.sample("z", flow).shape == (2,)
    with pyro.plate("p", 3):
        z = pyro.sample("z", flow.expand([3]))
    assert z.shape == (3, 2)
    trace = pyro.poutine.trace(lambda: pyro.sample("z", flow.expand([3]))).get_trace()
    torch.testing.assert_close(trace.log_prob_sum(), flow.log_prob(trace.nodes["z"]["value"]).sum())


def test_pyro_svi_with_a_cflib_guide_finds_the_exact_posterior():
    """mu ~ N(0, I_2), y_i ~ N(mu, I_2) for n points: the posterior is N(sum y / (n + 1),
    I / (n + 1)); a flow guide trained by SVI must find it."""
    import pyro.distributions as dist
    from pyro.infer import SVI, Trace_ELBO

    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    data = torch.tensor([[1.0, -0.5], [2.0, 0.5], [1.5, 0.0], [0.5, 1.0]])
    n = len(data)
    flow = CouplingFlow(2, num_layers=2, hidden_dim=8)

    def model():
        mu = pyro.sample("mu", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        with pyro.plate("data", n):
            pyro.sample("y", dist.Normal(mu, 1.0).to_event(1), obs=data)

    def guide():
        pyro.module("flow", flow)
        pyro.sample("mu", flow)

    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.02}), Trace_ELBO(num_particles=2))
    for _ in range(300):
        svi.step()
    samples = flow.sample(20000)
    torch.testing.assert_close(samples.mean(0), data.sum(0) / (n + 1), rtol=0, atol=0.1)
    torch.testing.assert_close(samples.std(0), torch.full((2,), (n + 1) ** -0.5), rtol=0.15, atol=0)
