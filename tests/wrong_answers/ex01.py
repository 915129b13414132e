"""Plausible wrong answers to exercise 01, each a small change of the solution, and the checks
each must fail (see ``tests/test_grading.py``)."""

LOGDET = "return sp.simplify(sum(sp.log(sp.Abs(J[i, i])) for i in range(J.shape[0])))"
WRONG = {
    "wrong_block": (
        {"return J[:k, k:]": "return J[k:, :k]"},
        {"upper_right_block_slices", "zero_block_is_exact"},
    ),
    "sign_flipped": (
        {LOGDET: "return -" + LOGDET.removeprefix("return ")},
        {"log_abs_det_is_sum_of_scales", "log_abs_det_of_triangular"},
    ),
    "log_det_not_simplified": (
        {LOGDET: "return sp.log(sp.Abs(J.det()))"},
        {"log_abs_det_is_sum_of_scales"},
    ),
    "transposed_jacobian": (
        {"return sp.Matrix(y).jacobian(z)": "return sp.Matrix(y).jacobian(z).T"},
        {"jacobian_entries", "jacobian_more_splits", "zero_block_is_exact"},
    ),
}
