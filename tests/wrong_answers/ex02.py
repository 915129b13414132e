"""Plausible wrong answers to exercise 02, each a small change of the solution, and the checks
each must fail (see ``tests/test_grading.py``); and answers that only delegate to forbidden cflib
objects (none: no cflib object computes a dependency pattern, so ``EXERCISE.forbidden`` is empty)."""

WRONG = {
    # the first layer's pattern on the left: the layers applied last to first
    "ex02_wrong_order": (
        {"(pattern.long() @ result.long())": "(result.long() @ pattern.long())"},
        {
            "stack_pattern_composes_in_order",
            "flow_pattern_matches_autograd",
            "flow_pattern_of_coupling_flow",
            "layers_for_alternating_halves",
            "layers_for_any_masks",
        },
    ),
    # transformed coordinates forgotten as depending on themselves
    "ex02_no_diagonal": (
        {
            "eye = torch.eye(len(mask), dtype=torch.bool)": (
                "eye = torch.diag(mask)  # only the kept coordinates are copied"
            )
        },
        {
            "coupling_pattern_matches",
            "flow_pattern_matches_autograd",
            "flow_pattern_of_coupling_flow",
            "layers_for_alternating_halves",
            "layers_for_any_masks",
        },
    ),
    # the permutation read backwards: D[perm[i], i] instead of D[i, perm[i]]
    "ex02_permutation_transposed": (
        {"pattern[torch.arange(d), perm] = True": "pattern[perm, torch.arange(d)] = True"},
        {
            "permutation_pattern_matches",
            "flow_pattern_matches_autograd",
            "flow_pattern_of_coupling_flow",
        },
    ),
    # permutations treated as the identity: coordinates never move
    "ex02_permutation_ignored": (
        {"origin = origin[layer.perm]  # y[:, i] = x[:, perm[i]]": "pass"},
        {"never_transformed_follows_permutations"},
    ),
    # forgetting to alternate: always the first mask
    "ex02_same_mask": (
        {"coupling_pattern(masks[layers % len(masks)])": "coupling_pattern(masks[0])"},
        {"layers_for_alternating_halves", "layers_for_any_masks"},
    ),
    # off by one: counts the couplings before the one that makes the pattern dense
    "ex02_off_by_one": (
        {
            "        if bool(new.all()):\n            return layers": (
                "        if bool(new.all()):\n            return layers - 1"
            )
        },
        {"layers_for_alternating_halves", "layers_for_any_masks"},
    ),
    # only D[i, j] looked at: pairs where output j depends on input i are listed too
    "ex02_pairs_one_sided": (
        {"apart = ~(pattern | pattern.T)": "apart = ~pattern"},
        {"non_interacting_pairs_are_sound", "non_interacting_pairs_found"},
    ),
    # neighbours skipped: every pair listed never interacts, but some are missing
    "ex02_pairs_skip_neighbours": (
        {"for j in range(i + 1, d) if apart[i, j]": "for j in range(i + 2, d) if apart[i, j]"},
        {"non_interacting_pairs_found"},
    ),
}

DELEGATION: dict[str, tuple[dict[str, str], set[str]]] = {}
