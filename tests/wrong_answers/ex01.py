"""Plausible wrong answers to exercise 01, each a small change of the solution, and the checks
each must fail (see ``tests/test_grading.py``); and answers that only delegate to the cflib objects
that ``EXERCISE.forbidden`` disables while grading, with the checks that must then earn nothing."""

LOGDET = "return sp.simplify(sum(sp.log(sp.Abs(J[i, i])) for i in range(J.shape[0])))"
JACOBIAN = """    z, s, t = coupling_symbols(d, k)
    y = list(z[:k]) + [z[i] * sp.exp(s[i - k]) + t[i - k] for i in range(k, d)]
    return sp.Matrix(y).jacobian(z)"""
TORCH = """    za, zb = z[:, :k], z[:, k:]
    s = scale(za)
    y = torch.cat([za, zb * torch.exp(s) + shift(za)], dim=1)
    return y, s.sum(dim=1)"""

WRONG = {
    "wrong_block": (
        {"return J[:k, k:]": "return J[k:, :k]"},
        {"upper_right_block_slices", "zero_block_is_exact"},
    ),
    "sign_flipped": (
        {LOGDET: "return -" + LOGDET.removeprefix("return ")},
        {"log_abs_det_properties", "log_abs_det_is_sum_of_scales"},
    ),
    "log_det_not_simplified": (
        {LOGDET: "return sp.log(sp.Abs(J.det()))"},
        {"log_abs_det_properties", "log_abs_det_is_sum_of_scales"},
    ),
    "transposed_jacobian": (
        {"return sp.Matrix(y).jacobian(z)": "return sp.Matrix(y).jacobian(z).T"},
        {"jacobian_shape", "jacobian_entries", "zero_block_is_exact"},
    ),
    # the determinant confused with the exponential of the trace (det exp(A) = exp(tr A))
    "det_as_exp_trace": (
        {"return sp.simplify(J.det())": "return sp.simplify(sp.exp(J.trace()))"},
        {"determinant_properties", "determinant_is_exp_of_sum"},
    ),
    # ladj as the log of the sum of the scale factors instead of the sum of their logs
    "ladj_log_of_sum": (
        {"return y, s.sum(dim=1)": "return y, torch.log(torch.exp(s).sum(dim=1))"},
        {"affine_coupling_ladj_is_log_det", "affine_coupling_matches"},
    ),
    # the shift forgotten: ladj is still right, y is not
    "shift_forgotten": (
        {"zb * torch.exp(s) + shift(za)": "zb * torch.exp(s)"},
        {"affine_coupling_matches"},
    ),
    # z_b scaled in place: y and ladj are right, but the caller's z changes
    "scales_in_place": (
        {
            "y = torch.cat([za, zb * torch.exp(s) + shift(za)], dim=1)": (
                "zb.mul_(torch.exp(s)).add_(shift(za))\n    y = torch.cat([za, zb], dim=1)"
            )
        },
        {"affine_coupling_ladj_is_log_det", "affine_coupling_matches"},
    ),
}

DELEGATION = {
    "delegates_jacobian": (
        {
            JACOBIAN: (
                "    from cflib.symbolic import coupling_jacobian\n\n"
                '    return coupling_jacobian("affine", d, k).jacobian'
            )
        },
        {
            "jacobian_shape",
            "determinant_properties",
            "log_abs_det_properties",
            "jacobian_entries",
            "zero_block_is_exact",
        },
    ),
    "delegates_block": (
        {
            "return J[:k, k:]": "from cflib.symbolic import zero_block\n\n    return zero_block(J, k)"
        },
        {"upper_right_block_slices", "zero_block_is_exact"},
    ),
    "delegates_log_abs_det": (
        {LOGDET: "import cflib.symbolic\n\n    return cflib.symbolic.log_abs_det(J)"},
        {"log_abs_det_properties", "log_abs_det_is_sum_of_scales"},
    ),
    "delegates_affine_coupling": (
        {
            TORCH: """    d = z.shape[1]

    class ScaleAndShift(torch.nn.Module):
        def forward(self, za):
            return torch.stack([scale(za), shift(za)], dim=-1).flatten(1)

    layer = cflib.AffineCoupling(d, mask=torch.arange(d) < k, conditioner=ScaleAndShift())
    return layer(z)"""
        },
        {"affine_coupling_ladj_is_log_det", "affine_coupling_matches"},
    ),
}
