"""Plausible wrong answers to exercise 03, each a small change of the solution, and the checks
each must fail (see ``tests/test_grading.py``)."""

FORWARD_LADJ = "ladj = s.masked_fill(mask, 0.0).flatten(1).sum(1)"
INVERSE_LADJ = "return x, -s.masked_fill(mask, 0.0).flatten(1).sum(1)"
WRONG = {
    # (i + j) even and odd swapped: the other parity is kept
    "ex03_parity_swapped": (
        {"return (i + j) % 2 == parity": "return (i + j) % 2 != parity"},
        {"checkerboard_values", "checkerboard_any_size"},
    ),
    # a float mask (ones and zeros) instead of a boolean one
    "ex03_float_mask": (
        {"return (i + j) % 2 == parity": "return ((i + j) % 2 == parity).float()"},
        {"checkerboard_is_boolean"},
    ),
    # the log-determinant summed over the kept pixels too
    "ex03_logdet_all_pixels": (
        {FORWARD_LADJ: "ladj = s.flatten(1).sum(1)"},
        {"log_det_matches_autograd"},
    ),
    # the inverse's log-determinant with the forward's sign
    "ex03_inverse_sign": (
        {INVERSE_LADJ: INVERSE_LADJ.replace("-s.", "s.")},
        {"inverse_log_det"},
    ),
    # the networks see the whole input, transformed pixels included
    "ex03_conditioner_sees_x": (
        {"kept = x * mask": "kept = x", "kept = y * mask": "kept = y"},
        {
            "conditioner_sees_only_kept_pixels",
            "coupling_transforms_the_rest",
            "log_det_matches_autograd",
            "inverse_round_trip",
            "inverse_log_det",
        },
    ),
    # an "inverse" that undoes shift and scale in the wrong order
    "ex03_inverse_not_inverse": (
        {"(y - t) * torch.exp(-s)": "y * torch.exp(-s) - t"},
        {"inverse_round_trip"},
    ),
}
