"""Plausible wrong answers to exercise 05, each a small change of the solution, and the checks
each must fail (see ``tests/test_grading.py``)."""

HALF = "half = torch.sqrt(1 - x1**2)"
SMALLEST = """    reached = [depth for depth, error in errors.items() if error <= threshold]
    return min(reached) if reached else None"""
WRONG = {
    # the chord's half-length squared: y2 = x2 / (1 - x1^2) leaves the square near the circle
    "ex05_chord_half_length_not_square_rooted": (
        {HALF: "half = 1 - x1**2"},
        {"rescale_chords_values", "square_is_uniform", "log_dets_match_autograd"},
    ),
    # only the first coupling: the square is filled, but its first coordinate is a semicircle law
    "ex05_forgot_second_map": (
        {
            "y, ladj_first = uniformise_first(middle)": "y, ladj_first = middle, 0.0",
            "middle, ladj_first = uniformise_first(y, inverse=True)": "middle, ladj_first = y, 0.0",
        },
        {"square_is_uniform", "log_dets_match_autograd"},
    ),
    "ex05_log_det_sign": (
        {
            "return torch.stack([x1, x2 / half], dim=1), -torch.log(half)": (
                "return torch.stack([x1, x2 / half], dim=1), torch.log(half)"
            )
        },
        {"rescale_chords_values", "square_to_disk_inverts", "log_dets_match_autograd"},
    ),
    # a bisection stopped after 10 halvings: an inverse accurate to 1e-3 only
    "ex05_inverse_not_accurate": (
        {"for _ in range(60):": "for _ in range(10):"},
        {"square_to_disk_inverts"},
    ),
    # the position in the list instead of the depth: one too small
    "ex05_smallest_depth_off_by_one": (
        {
            SMALLEST: """    for index, depth in enumerate(sorted(errors)):
        if errors[depth] <= threshold:
            return index
    return None"""
        },
        {"smallest_depth_rule", "smallest_depth_edge_cases", "depth_needed_matches"},
    ),
    "ex05_error_on_training_samples": (
        {
            "DISK.log_prob(x_test).double() - flow.log_prob(x_test).double()": (
                "DISK.log_prob(x_train).double() - flow.log_prob(x_train).double()"
            )
        },
        {"errors_are_held_out"},
    ),
}
