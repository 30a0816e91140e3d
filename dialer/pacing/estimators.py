"""Online estimates with priors and exponential forgetting: rates and duration distributions."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class DecayedRate:
    """A probability estimated from yes/no observations, forgetting old ones.

    ``memory`` is the effective number of observations remembered; the prior acts as
    ``prior_weight`` pseudo-observations, so the estimate is sensible before any data.
    """

    __slots__ = ("_decay", "_no", "_prior", "_prior_weight", "_yes", "count")

    def __init__(self, prior: float, prior_weight: float, memory: float) -> None:
        self._prior = prior
        self._prior_weight = prior_weight
        self._decay = 1.0 - 1.0 / memory
        self._yes = 0.0
        self._no = 0.0
        self.count = 0

    def add(self, yes: bool) -> None:
        """Record one observation."""
        self._yes *= self._decay
        self._no *= self._decay
        if yes:
            self._yes += 1.0
        else:
            self._no += 1.0
        self.count += 1

    @property
    def value(self) -> float:
        """The current estimate."""
        w = self._prior_weight
        return (self._yes + w * self._prior) / (self._yes + self._no + w)


def lognormal_pmf(mean: float, cv: float, bins: int, width: float = 1.0) -> FloatArray:
    """A lognormal distribution discretised into ``bins`` bins of ``width`` seconds.

    Mass beyond the last bin is put in the last bin so the pmf sums to one.
    """
    sigma = math.sqrt(math.log(1.0 + cv * cv))
    mu = math.log(mean) - sigma * sigma / 2.0
    edges = [(i * width) for i in range(1, bins)]
    cdf = [0.0]
    for x in edges:
        z = (math.log(x) - mu) / (sigma * math.sqrt(2.0))
        cdf.append(0.5 * (1.0 + math.erf(z)))
    cdf.append(1.0)
    return np.diff(np.asarray(cdf, dtype=np.float64))


def spike_pmf(at: float, bins: int, width: float = 1.0) -> FloatArray:
    """All mass in the bin holding ``at``."""
    pmf = np.zeros(bins, dtype=np.float64)
    pmf[min(int(at / width), bins - 1)] = 1.0
    return pmf


class DecayedHistogram:
    """A duration distribution on a grid of ``width``-second bins, forgetting old observations.

    The last bin collects everything longer.  The prior pmf counts as ``prior_weight``
    observations; ``memory`` is the effective number of observations remembered.
    """

    __slots__ = ("_counts", "_decay", "_prior", "bins", "count", "width")

    def __init__(
        self, prior: FloatArray, prior_weight: float, memory: float, width: float = 1.0
    ) -> None:
        self.bins = int(prior.shape[0])
        self.width = width
        self._prior = prior * (prior_weight / float(prior.sum()))
        self._counts = np.zeros(self.bins, dtype=np.float64)
        self._decay = 1.0 - 1.0 / memory
        self.count = 0

    def add(self, seconds: float) -> None:
        """Record one observed duration."""
        self._counts *= self._decay
        index = min(max(int(seconds / self.width), 0), self.bins - 1)
        self._counts[index] += 1.0
        self.count += 1

    def pmf(self) -> FloatArray:
        """The current estimate: probability of each bin."""
        total = self._counts + self._prior
        result: FloatArray = total / float(total.sum())
        return result


def mean_of(pmf: FloatArray, width: float = 1.0) -> float:
    """The mean of a binned distribution (bin midpoints)."""
    mids = (np.arange(pmf.shape[0], dtype=np.float64) + 0.5) * width
    return float(pmf @ mids)
