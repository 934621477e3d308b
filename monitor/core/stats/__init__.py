"""Pure statistics for the monitor: paired tests, drift tests, sequential detection, BH.

stdlib, numpy and scipy only; every result is a frozen dataclass owned by
this package (never a SciPy result object), so the rest of the system does
not depend on SciPy's return types. See docs/statistics.md for the methods
and their measured power.

* `paired`: exact McNemar, the K-run Poisson-binomial + stable-items test with
  an empirical-Bayes prior, Wilcoxon signed-rank with a paired bootstrap CI.
* `crossfit`: the run total weighted by how much items vary, cross-fitted,
  with its null from a nonparametric (grid) prior of pass rates.
* `drift`: KS and Anderson-Darling k-sample, chi-square with sparse cells
  merged, PSI, Jensen-Shannon and Wasserstein distances.
* `sequential`: one-sided CUSUM with its threshold from a target ARL0.
* `multiple`: Benjamini-Hochberg adjusted p-values.
* `equivalence`: two endpoints on the same items: paired difference, CI, TOST, tiers.
"""

from monitor.core.stats.drift import (
    CategoricalDrift,
    DistributionDrift,
    compare_categories,
    compare_distributions,
    js_distance,
    psi,
)
from monitor.core.stats.equivalence import (
    EquivalenceResult,
    LeaderboardEntry,
    paired_equivalence,
    rank_endpoints,
)
from monitor.core.stats.multiple import adjust_p_values, reject
from monitor.core.stats.paired import (
    BetaPrior,
    ComponentTest,
    InsufficientDataError,
    McNemarResult,
    PairedBinaryResult,
    PairedContinuousResult,
    fit_beta_prior,
    mcnemar_exact,
    paired_binary_test,
    paired_bootstrap_ci,
    paired_continuous_test,
    poisson_binomial_pmf,
    wilcoxon_signed_rank,
)
from monitor.core.stats.sequential import (
    CusumStep,
    cusum_step,
    cusum_threshold,
    markov_chain_arl,
    siegmund_arl,
    standardize,
)

__all__ = [
    "BetaPrior",
    "CategoricalDrift",
    "ComponentTest",
    "CusumStep",
    "DistributionDrift",
    "EquivalenceResult",
    "InsufficientDataError",
    "LeaderboardEntry",
    "McNemarResult",
    "PairedBinaryResult",
    "PairedContinuousResult",
    "adjust_p_values",
    "compare_categories",
    "compare_distributions",
    "cusum_step",
    "cusum_threshold",
    "fit_beta_prior",
    "js_distance",
    "markov_chain_arl",
    "mcnemar_exact",
    "paired_binary_test",
    "paired_bootstrap_ci",
    "paired_continuous_test",
    "paired_equivalence",
    "poisson_binomial_pmf",
    "psi",
    "rank_endpoints",
    "reject",
    "siegmund_arl",
    "standardize",
    "wilcoxon_signed_rank",
]
