"""Plausible wrong answers to exercise 04, each a small change of the solution, and the checks
each must fail (see ``tests/test_grading.py``)."""

KL = '"kl": float((log_p - log_q).mean()),'
WRONG = {
    # the same hidden size for both: the spline flow gets twice the affine flow's parameters
    "ex04_unequal_budgets": (
        {
            "flows[kind] = fit(kind, matched_hidden_dim(kind, budget), x_train)": (
                'flows[kind] = fit(kind, matched_hidden_dim("affine", budget), x_train)'
            )
        },
        {"budgets_by_your_count", "equal_budgets"},
    ),
    # the flows are measured on the data they were trained on
    "ex04_nll_on_training_data": (
        {
            "results[kind] = held_out_metrics(flows[kind], target, x_test)": (
                "results[kind] = held_out_metrics(flows[kind], target, x_train)"
            )
        },
        {"results_match_your_metrics", "results_are_held_out"},
    ),
    "ex04_kl_sign_reversed": (
        {KL: '"kl": float((log_q - log_p).mean()),'},
        {"held_out_kl", "held_out_metrics_other_targets", "results_are_held_out"},
    ),
    # the cross-entropy (the NLL) reported as the KL: the target's log-density is missing
    "ex04_kl_without_target_log_density": (
        {KL: '"kl": float((-log_q).mean()),'},
        {"held_out_kl", "held_out_metrics_other_targets", "results_are_held_out"},
    ),
    # the mean log-likelihood instead of its negative: the worse flow then looks better
    "ex04_log_prob_not_negated": (
        {'"nll": float(-log_q.mean()),': '"nll": float(log_q.mean()),'},
        {
            "held_out_nll",
            "held_out_metrics_other_targets",
            "results_are_held_out",
            "winner_matches_numbers",
        },
    ),
    # a conclusion decided before looking at the numbers
    "ex04_conclusion_contradicts_numbers": (
        {"winner = pick_winner(results)": 'winner = "affine"'},
        {"winner_follows_your_rule", "winner_matches_numbers"},
    ),
    # frozen parameters counted: the budget is not what is trained
    "ex04_count_includes_frozen": (
        {
            "return sum(p.numel() for p in model.parameters() if p.requires_grad)": (
                "return sum(p.numel() for p in model.parameters())"
            )
        },
        {"count_parameters_properties", "counts_trainable_parameters"},
    ),
    # one standard error of the difference instead of two: differences in the noise win
    "ex04_tie_within_one_standard_error": (
        {
            'noise = 2 * math.hypot(affine["nll_se"], spline["nll_se"])': (
                'noise = math.hypot(affine["nll_se"], spline["nll_se"])'
            )
        },
        {"winner_rule"},
    ),
}

# Answers that only call cflib's own version of what is asked (EXERCISE.forbidden): graded in the
# sandbox, where those objects raise DelegationError, they earn nothing for that part. The
# experiment calls held_out_metrics, so its variables are not left behind either.
DELEGATION = {
    "ex04_held_out_metrics_delegated": (
        {
            """    with torch.no_grad():
        log_q = model.log_prob(x).double()
        log_p = target.log_prob(x).double()
    return {
        "nll": float(-log_q.mean()),
        "nll_se": float(log_q.std() / math.sqrt(len(x))),
        "kl": float((log_p - log_q).mean()),
    }""": """    with torch.no_grad():
        log_q = model.log_prob(x).double()
    kl, _ = cflib.metrics.kl_divergence(target, model, n=len(x))
    return {
        "nll": cflib.metrics.nll(model, x),
        "nll_se": float(log_q.std() / math.sqrt(len(x))),
        "kl": kl,
    }"""
        },
        {
            "held_out_nll",
            "held_out_kl",
            "held_out_metrics_other_targets",
            "budgets_by_your_count",
            "results_match_your_metrics",
            "winner_follows_your_rule",
            "equal_budgets",
            "results_are_held_out",
            "winner_matches_numbers",
        },
    ),
}
