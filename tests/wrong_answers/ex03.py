"""Plausible wrong answers to exercise 03, each a small change of the solution, and the checks
each must fail (see ``tests/test_grading.py``); and answers that only delegate to the cflib objects
the exercise forbids, with the checks that must earn nothing for them."""

FORWARD_LADJ = "ladj = s.masked_fill(mask, 0.0).flatten(1).sum(1)"
INVERSE_LADJ = "return x, -s.masked_fill(mask, 0.0).flatten(1).sum(1)"
WRONG = {
    # (i + j) even and odd swapped: the other parity is kept
    "ex03_parity_swapped": (
        {"return (i + j) % 2 == parity": "return (i + j) % 2 != parity"},
        {"checkerboard_values"},
    ),
    # a float mask (ones and zeros) instead of a boolean one
    "ex03_float_mask": (
        {"return (i + j) % 2 == parity": "return ((i + j) % 2 == parity).float()"},
        {"checkerboard_is_boolean"},
    ),
    # stripes, not a checkerboard: only the row index decides
    "ex03_stripes": (
        {"return (i + j) % 2 == parity": "return (i + 0 * j) % 2 == parity"},
        {"parities_cover_every_pixel", "checkerboard_values"},
    ),
    # the log-determinant summed over the kept pixels too
    "ex03_logdet_all_pixels": (
        {FORWARD_LADJ: "ladj = s.flatten(1).sum(1)"},
        {"log_det_matches_finite_differences"},
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
            "log_det_matches_finite_differences",
            "inverse_round_trip",
            "inverse_log_det",
            "inverse_of_the_right_coupling",
        },
    ),
    # an "inverse" that undoes shift and scale in the wrong order
    "ex03_inverse_not_inverse": (
        {"(y - t) * torch.exp(-s)": "y * torch.exp(-s) - t"},
        {"inverse_round_trip", "inverse_of_the_right_coupling"},
    ),
    # the shift subtracted in the coupling and added back in the inverse: a consistent pair, with
    # the right log-determinants, of the wrong coupling
    "ex03_shift_sign": (
        {
            "x * torch.exp(s) + t": "x * torch.exp(s) - t",
            "(y - t) * torch.exp(-s)": "(y + t) * torch.exp(-s)",
        },
        {"coupling_transforms_the_rest", "inverse_of_the_right_coupling"},
    ),
}

# Answers that only call what the exercise forbids: graded in the sandbox, where those objects are
# stubs that raise DelegationError, they must earn nothing in the checks named.
MASK_BODY = """    i = torch.arange(height)[:, None]
    j = torch.arange(width)[None, :]
    return (i + j) % 2 == parity"""
FORWARD_BODY = """    kept = x * mask
    s, t = scale_net(kept), shift_net(kept)
    y = torch.where(mask, x, x * torch.exp(s) + t)
    ladj = s.masked_fill(mask, 0.0).flatten(1).sum(1)
    return y, ladj"""
INVERSE_BODY = """    kept = y * mask
    s, t = scale_net(kept), shift_net(kept)
    x = torch.where(mask, y, (y - t) * torch.exp(-s))
    return x, -s.masked_fill(mask, 0.0).flatten(1).sum(1)"""
LAYER = (
    "    layer = cflib.AffineCoupling(\n"
    "        tuple({arg}.shape[1:]), mask=mask, conditioner=ScaleAndShift(scale_net, shift_net)\n"
    "    )\n"
)
DELEGATION = {
    "ex03_delegates_mask": (
        {MASK_BODY: "    return cflib.checkerboard_mask(height, width, flip=parity == 0)"},
        {"checkerboard_is_boolean", "parities_cover_every_pixel", "checkerboard_values"},
    ),
    "ex03_delegates_coupling": (
        {FORWARD_BODY: LAYER.format(arg="x") + "    return layer(x)"},
        {
            "coupling_keeps_masked_pixels",
            "conditioner_sees_only_kept_pixels",
            "log_det_matches_finite_differences",
            "inverse_round_trip",
            "coupling_transforms_the_rest",
        },
    ),
    "ex03_delegates_inverse": (
        {INVERSE_BODY: LAYER.format(arg="y") + "    return layer.inverse(y)"},
        {"inverse_round_trip", "inverse_log_det", "inverse_of_the_right_coupling"},
    ),
}
