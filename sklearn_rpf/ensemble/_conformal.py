"""Conformal prediction intervals from the out-of-bag rows: jackknife+-after-bootstrap.

Every training row is out of bag for about a third of the members, and those members predict it
as new data. Kim, Xu & Barber ("Predictive inference is free with the jackknife+-after-bootstrap",
NeurIPS 2020) turn exactly that into intervals with a finite-sample guarantee and no refit: with
``mu_{-i}`` the average of the members that did not draw row ``i`` and ``R_i`` its residual there,
the interval at ``x`` runs from the ``alpha`` quantile of ``mu_{-i}(x) - R_i`` to the ``1 - alpha``
quantile of ``mu_{-i}(x) + R_i`` over the training rows (with one extra point at infinity, which is
what makes the guarantee finite-sample).

Two scores are offered:

* ``"absolute"``: ``R_i = |y_i - mu_{-i}(x_i)|``, Kim et al.'s method. For exchangeable data their
  theorem guarantees coverage of at least ``1 - 2 alpha`` when the number of members is drawn at
  random as they describe; with a fixed number of members (ours) it holds up to that detail, and
  in practice coverage is close to ``1 - alpha``.
* ``"studentized"``: ``R_i = |y_i - mu_{-i}(x_i)| / s_{-i}(x_i)``, where ``s_{-i}`` is the
  predictive standard deviation of the same out-of-bag members (their spread plus the fitted
  noise), and the interval is ``mu_{-i}(x) -/+ R_i s_{-i}(x)``. It widens where the members
  disagree and narrows where they agree. The ``1 - 2 alpha`` argument holds only approximately:
  ``s_{-i}`` includes the noise level, fitted on every out-of-bag residual (row ``i``'s among
  them).

Sample weights enter as weighted quantiles, each row counting its weight relative to the mean
weight and the test point counting one: uniform weights give the plain method, and scaling every
weight changes nothing.

What fit keeps: each calibration row's residual (``n x t`` floats) and which members left it out
(``n x K`` bits, packed): jackknife+ needs the second, because ``mu_{-i}`` is re-evaluated at every
test point. Rows that every member drew have no out-of-bag prediction and are left out. Beyond
``MAX_ROWS`` such rows, a uniform sample of ``MAX_ROWS`` of them is kept: the rows of smallest
hash of their content keyed by the seed (as ``partial_fit``'s Poisson draws and calibration
sample are; identical rows share a hash, so only a group of them straddling the cut is split),
so it does not depend on the order of the rows, and no row's residual or out-of-bag members
play a part in choosing it. The members still train on every row; the sample and a new test
point are exchangeable as before, so the guarantee holds with ``n = MAX_ROWS`` (in the same sense
as above), while the cost at predict time and the calibration's memory stop growing with the
training set.

The search that turns these rows into the two ends at a test point, and its cost, are in
``_jackknife_search``.
"""

from dataclasses import dataclass

import numpy as np

from . import _jackknife_search as search
from ._bootstrap import hash_key, hash_uniform

SCORES = ("absolute", "studentized")
# Calibration rows kept at most. The interval's cost grows with rows x test points: on 100,000
# training rows and 20,000 test points it took 6.51 s with every row, 1.52 s with 20,000, where
# predict took 0.13 s (benchmarks/bench_scale.py, one run; README). At 20,000 rows of equal
# weight the 95% end is the 1,000th largest value, and the coverage's sampling error about 0.002
# (more with very uneven weights: fewer rows then carry the weight). partial_fit's calibration
# sample has the same size.
MAX_ROWS = 20_000
# predict_interval warns when more than this share of the training rows have an exact copy: rows
# duplicated by mistake make the interval too narrow for new data. `python -m
# benchmarks.duplicated_rows` (300 rows, 95%, three seeds): 0.951 coverage deduplicated, 0.916
# with a quarter of them tripled (half the rows with a copy), 0.821 with all of them tripled.
# Wine, whose published training splits have a copy for 24-28% of their rows (kept as real data
# here), stays below; the other shipped sets have none or 4%.
REPEATED_ROWS_WARNING = 0.3


@dataclass(frozen=True)
class OutOfBagCalibration:
    """The out-of-bag residuals jackknife+-after-bootstrap needs, kept from fit.

    Attributes
    ----------
    residuals : ndarray of shape (n_cal, t)
        ``y_i - mu_{-i}(x_i)`` in standardised target units.
    scales : ndarray of shape (n_cal, t)
        ``s_{-i}(x_i)``, the out-of-bag predictive standard deviation (studentised score).
    out_of_bag : ndarray of shape (n_cal, ceil(K / 8)), uint8
        Packed bits: member ``k`` left row ``i`` out.
    weight : ndarray of shape (n_cal,)
        Sample weights relative to their mean (the test point counts as one row).
    n_members : int
    typical_std : ndarray of shape (t,) or None
        Typical standard deviation of the members' outputs (standardised units; the median
        out-of-bag one), which orders the rows for the pruned search
        (``_jackknife_search.search_order``).
    repeated : float
        Share of the training rows of positive weight that have an exact copy, where going by
        index made a difference (0 without copies, and in a stream, whose draws follow the rows'
        content, so that copies are drawn together).
    """

    residuals: np.ndarray
    scales: np.ndarray
    out_of_bag: np.ndarray
    weight: np.ndarray
    n_members: int
    repeated: float = 0.0
    typical_std: np.ndarray | None = None

    @classmethod
    def from_out_of_bag(cls, y, oob, out_of_bag, sample_weight, epistemic_scale, noise, hashes,
                        seed, repeated=0.0, rows=None):
        """Calibration rows: those of positive weight with at least one out-of-bag member (where
        there are more than ``MAX_ROWS``, the ``MAX_ROWS`` of smallest hash keyed by ``seed``), or
        ``rows`` where the caller has picked them already (:func:`calibration_rows`).

        ``oob`` is the ``_uncertainty.OutOfBag`` summary of the training rows, ``out_of_bag`` the
        ``(n, K)`` boolean mask it was computed from; ``epistemic_scale`` and ``noise`` are the
        fitted factors (standardised units) that make up ``s_{-i}``; ``hashes`` the rows'
        content hashes (``Bag.hashes``).
        """
        if rows is None:
            rows = calibration_rows(out_of_bag.any(axis=1) & (sample_weight > 0), hashes, seed)
        if len(rows) < 1:
            return None
        mask = out_of_bag[rows]
        typical = _typical_std(oob.epistemic[rows])
        # Stored in the pruned search's order for the first target: a single-target model then
        # never sorts at predict time.
        order = search.search_order(np.abs(y[rows, 0] - oob.mean[rows, 0]), mask.sum(axis=1),
                                    mask.shape[1], typical[0])
        rows, mask = rows[order], mask[order]
        spread = _spread(mask, oob, rows)
        scales = _predictive_std(spread, epistemic_scale, noise, None if oob.base is None
                                 else oob.base[rows])
        weight = sample_weight[rows]
        return cls(
            residuals=y[rows] - oob.mean[rows],
            scales=scales,
            out_of_bag=np.packbits(mask, axis=1),
            weight=weight / weight.mean(),
            n_members=out_of_bag.shape[1],
            repeated=float(repeated),
            typical_std=typical,
        )

    @property
    def n_rows(self):
        return len(self.residuals)

    def _mask(self, dtype=np.float64):
        return np.unpackbits(self.out_of_bag, axis=1, count=self.n_members).astype(dtype)

    def _absolute_rows(self, dtype):
        """What the absolute score reads, one ``_jackknife_search.Rows`` per target, built on
        first use and kept for later calls (not pickled): the averaging weights in the members'
        precision, ``K`` floats a row, shared by the targets until the pruned search reorders
        them (a copy for each target after the first)."""
        cache = self.__dict__.setdefault("_cache", {})
        key = np.dtype(dtype).str
        if key not in cache:
            average = np.ascontiguousarray(self._mask(dtype).T)  # (K, n)
            average /= average.sum(axis=0)
            weight = None if np.all(self.weight == 1.0) else self.weight
            typical = (np.zeros(self.residuals.shape[1]) if self.typical_std is None
                       else self.typical_std)
            # The first target's rows are stored in the search's order (from_out_of_bag; not
            # in models saved before typical_std was kept).
            cache[key] = [search.Rows(np.abs(self.residuals[:, j]).astype(dtype), average, weight,
                                      typical[j], in_order=j == 0 and self.typical_std is not None)
                          for j in range(self.residuals.shape[1])]
        return cache[key]

    def __getstate__(self):
        state = dict(self.__dict__)  # one atomic copy: a predicting thread may add _cache
        state.pop("_cache", None)
        return state

    def intervals(self, batches, alpha, score, epistemic_scale, noise, dtype=np.float64):
        """Lower and upper bounds (standardised units) for batches of test points.

        Parameters
        ----------
        batches : iterable of (rows, means, variances)
            Member outputs on the test points, as ``FittedEnsemble.batches`` yields them.
        alpha : float
            1 - confidence.
        score : {"absolute", "studentized"}
        epistemic_scale, noise : ndarrays of shape (t,)
        dtype : numpy dtype
            The members' precision; the absolute score is evaluated in it (float32 halves the
            memory traffic of the selection, and the members are no more precise than that).

        Returns
        -------
        pieces : list of (rows, lower, upper)
            For each batch, its slice of the test points and the bounds there, each of shape
            ``(n_rows, t)``.
        """
        if score == "absolute":
            targets = self._absolute_rows(dtype)

            def bounds(means, variances):
                lower = np.empty(means.shape[1:])
                upper = np.empty(means.shape[1:])
                for j, rows in enumerate(targets):
                    lower[:, j], upper[:, j] = search.absolute_bounds(
                        means[:, :, j].astype(dtype), rows, alpha)
                return lower, upper
        else:
            mask = self._mask()
            counts = mask.sum(axis=1, keepdims=True)
            average = mask / counts  # mu_{-i}(x) = average @ member outputs

            def bounds(means, variances):
                return self._studentized(means, variances, average, counts, alpha,
                                         epistemic_scale, noise)
        return [(rows, *bounds(means, variances)) for rows, means, variances in batches]

    def _studentized(self, means, variances, average, counts, alpha, epistemic_scale, noise):
        weight = None if np.all(self.weight == 1.0) else self.weight
        chunk = max(1, search.CHUNK_ELEMENTS // self.n_rows)
        lower = np.empty(means.shape[1:])
        upper = np.empty(means.shape[1:])
        for start in range(0, means.shape[1], chunk):
            part = slice(start, start + chunk)
            for j in range(means.shape[2]):
                M = means[:, part, j]  # (K, m)
                centre = average @ M  # (n_cal, m)
                spread = _leave_out_spread(average, counts, M, centre)
                base = None if variances is None else average @ variances[:, part, j]
                s = _predictive_std(spread, epistemic_scale[j], noise[j], base)
                half = np.abs(self.residuals[:, j] / self.scales[:, j])[:, None] * s
                lower[part, j] = -search.jackknife_plus_end((half - centre).T, weight, alpha)
                upper[part, j] = search.jackknife_plus_end((centre + half).T, weight, alpha)
        return lower, upper


def calibration_rows(eligible, hashes, seed):
    """The calibration rows among the ``eligible`` ones (a boolean mask), in order: all of them,
    or past ``MAX_ROWS`` the ``MAX_ROWS`` of smallest content hash keyed by ``seed``."""
    rows = np.flatnonzero(eligible)
    if len(rows) > MAX_ROWS:
        if hashes is None:
            raise RuntimeError("the rows' content hashes are needed to pick calibration rows")
        ranks = hash_uniform(hashes[rows], hash_key(seed, "calibration"))
        rows = np.sort(rows[np.argsort(ranks, kind="stable")[:MAX_ROWS]])
    return rows


def _typical_std(epistemic):
    """Per target, the median out-of-bag standard deviation of the members (0 where no row has
    enough out-of-bag members for one, or where it is not finite)."""
    typical = np.zeros(epistemic.shape[1])
    known = ~np.all(np.isnan(epistemic), axis=0)
    typical[known] = np.sqrt(np.nanmedian(epistemic[:, known], axis=0))
    return np.where(np.isfinite(typical), typical, 0.0)


def _spread(mask, oob, rows):
    """The out-of-bag members' variance at their own rows; 0 where only one member is out."""
    spread = oob.epistemic[rows].copy()
    spread[mask.sum(axis=1) < 2] = 0.0
    return spread


def _leave_out_spread(average, counts, M, centre):
    """Variance of the out-of-bag members of each calibration row at each test point, with the
    same small-ensemble correction as the out-of-bag noise fit (``_uncertainty.OutOfBag``)."""
    second = average @ (M**2)
    k = counts
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.maximum(second - centre**2, 0.0) * k / (k - 1)
        variance *= 1.0 + 1.0 / k - 1.0 / M.shape[0]
    return np.where(k >= 2, variance, 0.0)


def _predictive_std(spread, epistemic_scale, noise, base):
    aleatoric = noise if base is None else noise * base
    return np.sqrt(epistemic_scale * spread + aleatoric)
