"""Is variant A's rate really different from B's? A two-proportion z-test.

With x1 of n1 and x2 of n2 messages opened, under H0 (same rate) the pooled
rate is p = (x1 + x2) / (n1 + n2) and

    z = (x1/n1 - x2/n2) / sqrt(p * (1 - p) * (1/n1 + 1/n2))

is approximately standard normal; the two-sided p-value is
P(|Z| >= |z|) = 2 * (1 - Phi(|z|)) = erfc(|z| / sqrt(2)).
Source: NIST/SEMATECH e-Handbook of Statistical Methods, section 7.3.3
("How can we determine whether two processes produce the same proportion of
defectives?"), https://www.itl.nist.gov/div898/handbook/prc/section3/prc33.htm;
Phi via erfc: Abramowitz & Stegun 26.2.29 (Phi(x) = erfc(-x/sqrt 2) / 2).

The normal approximation wants about 5 successes and 5 failures in each
group (the same handbook); below that we still compute it but the report
says ``"small_sample": true`` so nobody crowns a winner on 3 opens.
"""

from __future__ import annotations

import math
from statistics import NormalDist

SIGNIFICANCE = 0.05  # a winner is named only below this p-value
MIN_CELL = 5  # successes and failures per group for the normal approximation


def normal_sf2(z: float) -> float:
    """Two-sided tail of the standard normal: P(|Z| >= |z|)."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value that x1/n1 and x2/n2 come from one rate (1.0 if undefined)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if var <= 0.0:
        return 1.0  # both 0 % or both 100 %: no evidence of a difference
    z = (x1 / n1 - x2 / n2) / math.sqrt(var)
    return normal_sf2(z)


def small_sample(x: int, n: int) -> bool:
    return min(x, n - x) < MIN_CELL


POWER = 0.80  # the usual chance of seeing a real difference of the observed size
# Above this a "messages per variant" figure means "not with this audience";
# the sentence says "over 100,000" rather than a precise-looking 4,812,000.
MAX_SAMPLE = 100_000


def sample_size(p1: float, p2: float, alpha: float = SIGNIFICANCE, power: float = POWER) -> int:
    """Messages per variant for a two-sided test at ``alpha`` to find the gap
    between rates p1 and p2 with the given power (0 when there is no gap).

        n = (z_{1-a/2} sqrt(2 pbar qbar) + z_{1-b} sqrt(p1 q1 + p2 q2))^2 / (p1 - p2)^2

    with pbar = (p1 + p2) / 2, qbar = 1 - pbar, equal groups. Source: Fleiss,
    Levin & Paik, Statistical Methods for Rates and Proportions, 3rd ed.,
    eq. 4.14 (without continuity correction); NIST/SEMATECH e-Handbook 7.2.4.2
    gives the one-sample form. Capped at MAX_SAMPLE + 1.
    """
    if p1 == p2:
        return 0
    norm = NormalDist()
    za, zb = norm.inv_cdf(1.0 - alpha / 2.0), norm.inv_cdf(power)
    pbar = (p1 + p2) / 2.0
    top = za * math.sqrt(2.0 * pbar * (1.0 - pbar)) + zb * math.sqrt(
        p1 * (1.0 - p1) + p2 * (1.0 - p2)
    )
    n = (top / (p1 - p2)) ** 2
    return min(MAX_SAMPLE + 1, math.ceil(n))
