"""The console warnings of ``ebmlab latent`` on its runs' test log-likelihoods (computed by
:func:`ebmlab.latent.loglik_metrics`): heavy-tailed importance weights, disagreeing starts, a failed AIS check
or, on the toy, a value beyond 3 SE of quadrature."""

from __future__ import annotations

from typing import Any

from ...latent.evidence import KHAT_LIMIT

FAMILY_ALPHA = 0.01  # the starts' agreement: Bonferroni over the images, 1% family-wise false alarms


def is_warnings(r: dict[str, Any]) -> list[str]:
    """Warnings, with what to do, when the IS log-likelihood's weights say that its SE may not hold: k-hat above
    0.7 on some image, or independent starts that disagree beyond their SEs (a start's own IS estimate differs
    from the others': the starts found different posterior regions)."""
    out = []
    n = len(r.get("loglik_is_khat", []))
    bad = r.get("loglik_is_n_khat_above_0.7", 0)
    if bad:
        out.append(
            f"WARNING importance weights are heavy-tailed (Pareto k-hat > {KHAT_LIMIT}) on {bad} of {n} test images "
            f"(max {r['loglik_is_khat_max']:.2f}): their SEs understate the error; raise loglik.proposal.n_samples "
            "or loglik.proposal.newton_steps, or check those images with the AIS check"
        )
    p_min = r.get("loglik_is_start_p_min")
    if p_min is not None and p_min < FAMILY_ALPHA / max(n, 1):
        out.append(
            f"WARNING the IS starts disagree beyond their SEs on some test image (agreement p = {p_min:.1e} < "
            f"{FAMILY_ALPHA}/{n}): the starts reach different posterior regions and a region none of them found may "
            "be missing; raise loglik.starts (more sampler latents per image) and compare with the AIS check"
        )
    return out


def loglik_warnings(runs: dict[Any, dict[str, Any]]) -> list[str]:
    """One line per finished run and failed check of its log-likelihood: the weight diagnostics
    (:func:`is_warnings`), the AIS check of log p~(x) (``agree`` false) or, on the toy, the quadrature value
    (beyond 3 SE).  Empty when every check passes."""
    out = []
    for seed, r in sorted(runs.items()):
        out += [f"seed {seed}: {w}" for w in is_warnings(r)]
        check = r.get("loglik_ais_check")
        if check is not None and not check["agree"]:
            out.append(
                f"seed {seed}: WARNING the AIS check of log p~(x) disagrees with importance sampling by "
                f"{check['is_minus_ais_in_se']:+.1f} SE; the test log-likelihood is not verified"
            )
        z_quad = r.get("loglik_minus_quadrature_in_se")
        if z_quad is not None and abs(z_quad) > 3.0:
            out.append(f"seed {seed}: WARNING the test log-likelihood is {z_quad:+.1f} SE from its quadrature value")
    return out
