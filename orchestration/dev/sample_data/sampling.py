"""Cheap random draws: weighted choices and lognormal factors as precomputed lookup tables."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from functools import cache

POOL_BITS = 16             # weighted choices are lookups in tables of 2**POOL_BITS entries
LOGNORMAL_BITS = 14        # lognormal delays are quantiles on a grid of 2**LOGNORMAL_BITS


def weighted_pool(items: list, weights: Iterable[float], bits: int = POOL_BITS) -> list:
    """A lookup table where each item fills a share of 2**bits slots proportional to its weight.

    `pool[rng.getrandbits(bits)]` is then a weighted choice at the cost of one C call. Shares
    are apportioned by largest remainder; no randomness is involved.
    """
    weights = list(weights)
    size = 1 << bits
    total = sum(weights)
    exact = [w * size / total for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(items)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: size - sum(counts)]:
        counts[i] += 1
    table: list = []
    for item, count in zip(items, counts, strict=True):
        table.extend([item] * count)
    return table


@cache
def lognormal_factors(sigma: float, bits: int = LOGNORMAL_BITS) -> list[float]:
    """exp(sigma * z) at 2**bits evenly spaced quantiles of the standard normal: a lognormal
    draw with median 1 is `table[rng.getrandbits(bits)]`."""
    normal = statistics.NormalDist()
    size = 1 << bits
    return [math.exp(sigma * normal.inv_cdf((k + 0.5) / size)) for k in range(size)]
