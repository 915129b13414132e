"""Plausible wrong answers to exercise 05, each a small change of the solution, and the checks
each must fail (see ``tests/test_grading.py``). No cflib object implements what exercise 05 asks
for (``EXERCISE.forbidden`` is empty), so there are no delegating answers: ``DELEGATION`` is empty."""

HALF = "half = torch.sqrt(1 - x1**2)"
SMALLEST = """    reached = [depth for depth, error in errors.items() if error <= threshold]
    return min(reached) if reached else None"""
WRONG = {
    # the chord's half-length squared: y2 = x2 / (1 - x1^2) leaves the square near the circle
    "ex05_chord_half_length_not_square_rooted": (
        {HALF: "half = 1 - x1**2"},
        {"rescale_chords_consistent", "square_to_disk_inverts", "maps_are_exact"},
    ),
    # only the first coupling: the square is filled, but its first coordinate is a semicircle law
    "ex05_forgot_second_map": (
        {
            "y, ladj_first = uniformise_first(middle)": "y, ladj_first = middle, 0.0",
            "middle, ladj_first = uniformise_first(y, inverse=True)": "middle, ladj_first = y, 0.0",
        },
        {"maps_are_exact"},
    ),
    "ex05_log_det_sign": (
        {
            "return torch.stack([x1, x2 / half], dim=1), -torch.log(half)": (
                "return torch.stack([x1, x2 / half], dim=1), torch.log(half)"
            )
        },
        {"rescale_chords_consistent", "square_to_disk_inverts", "maps_are_exact"},
    ),
    # a bisection stopped after 10 halvings: an inverse accurate to 1e-3 only
    "ex05_inverse_not_accurate": (
        {"for _ in range(60):": "for _ in range(10):"},
        {"uniformise_first_consistent", "square_to_disk_inverts"},
    ),
    # the position in the list instead of the depth: one too small
    "ex05_smallest_depth_off_by_one": (
        {
            SMALLEST: """    for index, depth in enumerate(sorted(errors)):
        if errors[depth] <= threshold:
            return index
    return None"""
        },
        {"smallest_depth_is_reached", "smallest_depth_rule", "study_measured_on_held_out"},
    ),
    "ex05_error_on_training_samples": (
        {
            "DISK.log_prob(x_test).double() - flow.log_prob(x_test).double()": (
                "DISK.log_prob(x_train).double() - flow.log_prob(x_train).double()"
            )
        },
        {"study_measured_on_held_out"},
    ),
    # the flow's forward map instead of its inverse: not a function of the base point
    "ex05_to_square_forward_map": (
        {"z, _ = flow.inverse(x)": "z, _ = flow.forward(x)"},
        {"to_square_is_increasing", "to_square_maps"},
    ),
    # erf(z) instead of erf(z / sqrt 2): increasing onto [-1, 1], but not the normal CDF
    "ex05_to_square_not_scaled": (
        {"torch.special.erf(z / math.sqrt(2))": "torch.special.erf(z)"},
        {"to_square_maps"},
    ),
    # the depth needed read off by hand instead of computed from the errors
    "ex05_depth_needed_hard_coded": (
        {"depth_needed = smallest_depth(errors, THRESHOLD)": "depth_needed = 3"},
        {"study_is_complete", "study_measured_on_held_out"},
    ),
}

DELEGATION: dict[str, tuple[dict[str, str], set[str]]] = {}
