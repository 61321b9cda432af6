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
* ``"studentized"``: ``R_i = |y_i - mu_{-i}(x_i)| / s_{-i}(x_i)``, where ``s_{-i}`` is the predictive
  standard deviation of the same out-of-bag members (their spread plus the fitted noise), and the
  interval is ``mu_{-i}(x) -/+ R_i s_{-i}(x)``. It widens where the members disagree and narrows
  where they agree. The ``1 - 2 alpha`` argument holds only approximately: ``s_{-i}`` includes the
  noise level, fitted on every out-of-bag residual (row ``i``'s among them).

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
play a part in choosing it. The members still train on every row; the sample and a new test point are exchangeable as before, so the guarantee
holds with ``n = MAX_ROWS`` (in the same sense as above), while the cost at predict time and the
calibration's memory stop growing with the training set.

Cost at predict time. Done naively, each test point needs all ``n`` values ``mu_{-i}(x) +/- R_i``
and a selection among them. For the absolute score most rows cannot matter: ``mu_{-i}(x)``, the
mean of the ``c_i`` members that left row ``i`` out, is at most the mean of the ``c_i`` largest
member outputs at ``x``, so once a lower bound on the upper end is known (the same quantile over
a first block of rows alone), every row whose ``R_i`` plus that mean falls short of it is ruled
out. The rows are ordered so that those that can reach an end come first (by ``|R_i|`` plus
the members' typical spread times how far a mean of ``c_i`` members can reach,
``_search_order``); only a prefix of that order is evaluated, as long as the last row that
passes the bound, in groups of test points with prefixes of similar length. The bounds are
those of the full computation (``_upper_end``), up to the rounding of the products in the
members' precision. The rows are stored in that order at fit time (for the first target), so a
single-target model never sorts at predict time; what the search reads (the averaging weights,
``K`` floats a row) is built at the first call and kept, not pickled. Below ``_SMALL_SEARCH``
(rows x test points) one pass over every row is cheaper than pruning's two, and is what runs. On
small data a call's fixed costs matter as much as the values it evaluates, so the two ends run as
one search, and groups of test points are merged unless splitting them spares enough values.
"""

import functools
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import norm

from ._bootstrap import hash_key, hash_uniform

# Test points per chunk keep the (calibration rows x test points) matrices near this many floats.
_CHUNK_ELEMENTS = 500_000
# Below this many (rows x test points) the pruned search is not worth its first pass: measured
# warm on split 0 of the shared sets, one pass wins on energy (53k: 0.21 against 0.26 ms), pruning
# on concrete (95k: 0.32 against 0.35 ms), both ends solved together in either.
_SMALL_SEARCH = 80_000
# A group of test points in the pruned search is split off only if that spares more values than
# this: about what a group's own calls cost in evaluated values.
_MERGE_ELEMENTS = 10_000
# The pruned search's first pass reads this many times the selected rank of rows (those of
# largest residual) to set its floor: measured warm on split 0 of the shared sets, 1.25 and 1.5
# tied and beat 1, 2 and 3 (kin8nm 13.4 ms at 1.5, 13.5 at 1.25, 15.2 at 2; wine 1.38, 1.47 and
# 1.52 ms; concrete within 3% from 1.25 to 2). Again with the rows ordered by _search_order
# (split 0, 2026-12-03): kin8nm 27.1 ms at 1.5, 27.5 at 1.1, 28.2 at 1.25, 29.7 at 2, 48.3 at 1.
_HEAD_FACTOR = 1.5
SCORES = ("absolute", "studentized")
# The pruned search bounds the rows by how many members left them out, in these bands (a band
# starts at each value), each with the bound of its smallest count: one search per band.
_COUNT_BANDS = np.array([1, 2, 3, 4, 5, 6, 8, 10, 13])
# Calibration rows kept at most. The interval's cost grows with rows x test points: on 100,000
# training rows and 20,000 test points it took 7.73 s with every row, 1.67 s with 20,000, where
# predict took 0.28 s (benchmarks/bench_scale.py, one run). At 20,000 rows of equal weight the 95% end is the
# 1,000th largest value, and the coverage's sampling error about 0.002 (more with very uneven
# weights: fewer rows then carry the weight). partial_fit's calibration sample has the same size.
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
        out-of-bag one), which orders the rows for the pruned search (``_search_order``).
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
        with warnings.catch_warnings():  # a target whose rows all have too few members
            warnings.simplefilter("ignore", RuntimeWarning)
            typical = np.sqrt(np.nanmedian(oob.epistemic[rows], axis=0))
        typical = np.nan_to_num(typical, nan=0.0)
        # Stored in the pruned search's order for the first target: a single-target model then
        # never sorts at predict time.
        order = _search_order(np.abs(y[rows, 0] - oob.mean[rows, 0]), mask.sum(axis=1),
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
        """What the absolute score reads, one :class:`_Rows` per target, built on first use and
        kept for later calls (not pickled): the averaging weights in the members' precision,
        ``K`` floats a row, and the rows in the pruned search's order."""
        cache = self.__dict__.setdefault("_cache", {})
        key = np.dtype(dtype).str
        if key not in cache:
            average = np.ascontiguousarray(self._mask(dtype).T)  # (K, n)
            average /= average.sum(axis=0)
            weight = None if np.all(self.weight == 1.0) else self.weight
            typical = (np.zeros(self.residuals.shape[1]) if self.typical_std is None
                       else self.typical_std)
            # The first target's rows are stored in the search's order (from_out_of_bag).
            cache[key] = [_Rows(np.abs(self.residuals[:, j]).astype(dtype), average, weight,
                                typical[j], in_order=j == 0)
                          for j in range(self.residuals.shape[1])]
        return cache[key]

    def __getstate__(self):
        return {name: value for name, value in self.__dict__.items() if name != "_cache"}

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
                    lower[:, j], upper[:, j] = _absolute_bounds(
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
        chunk = max(1, _CHUNK_ELEMENTS // self.n_rows)
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
                lower[part, j] = -_jackknife_plus_end((half - centre).T, weight, alpha)
                upper[part, j] = _jackknife_plus_end((centre + half).T, weight, alpha)
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


class _Rows:
    """One target's calibration rows for the absolute score: ``|R_i|`` ``(n,)``, the out-of-bag
    averaging weights ``(K, n)``, the sample weights (None: uniform) and the members' typical
    standard deviation, as stored; and, built on first use (only the pruned search needs it),
    the same in the pruned search's order (:class:`_Ordered`), unless ``in_order`` says they
    are in it already."""

    def __init__(self, residual, average, weight, typical_std=0.0, in_order=False):
        self.residual, self.average, self.weight = residual, average, weight
        self.typical_std = typical_std
        self.in_order = in_order
        self._ordered = None

    def ordered(self):
        if self._ordered is None:
            self._ordered = _Ordered(self.residual, self.average, self.weight,
                                     None if self.in_order else self.typical_std)
        return self._ordered


class _Ordered:
    """Calibration rows in the pruned search's order (:func:`_search_order`; ``typical_std`` None:
    they are in it), and per band of counts of out-of-bag members (``_COUNT_BANDS``) the
    smallest count, the positions of its rows in that order and their ``-|R_i|``, increasing,
    which decide exactly which rows can reach an end."""

    def __init__(self, residual, average, weight, typical_std):
        counts = np.count_nonzero(average, axis=0)
        if typical_std is not None:
            order = _search_order(residual, counts, average.shape[0], typical_std)
            residual, average = residual[order], np.ascontiguousarray(average[:, order])
            weight, counts = None if weight is None else weight[order], counts[order]
        self.residual, self.average, self.weight = residual, average, weight
        band = np.searchsorted(_COUNT_BANDS, counts, side="right")
        self.groups = []
        for b in np.unique(band):
            positions = np.flatnonzero(band == b)
            smallest = int(counts[positions].min())
            negated = -residual[positions]
            if np.any(negated[1:] < negated[:-1]):
                # Counts of one band shift the key apart: by |R_i| here, and for each prefix of
                # these rows the last position any of them holds.
                positions = positions[np.argsort(negated, kind="stable")]
                negated = -residual[positions]
                positions = np.maximum.accumulate(positions)
            self.groups.append((smallest, positions, negated))


def _search_order(residual, counts, n_members, typical_std):
    """Rows by decreasing ``|R_i| + typical_std * g(c_i)``, ties by decreasing ``|R_i|``.

    ``mu_{-i}(x)``, the mean of the ``c_i`` members that left row ``i`` out, is at most the mean
    of the ``c_i`` largest member outputs at ``x``, so rows left out by few members can reach
    further. ``g(c)`` is about that mean for ``n_members`` standard normal outputs (the mean of
    a normal above its ``1 - c / K`` quantile): with members whose standard deviation is near
    ``typical_std``, the rows that can reach an end come first and the evaluated prefix is short.
    The order decides only how long the prefix is, never which rows are counted.
    """
    key = residual + typical_std * _reach(n_members)[np.asarray(counts) - 1]
    return np.lexsort((-residual, -key))


@functools.lru_cache
def _reach(n_members):
    """``g(c)`` of ``_search_order`` for ``c = 1 .. n_members`` (0 at ``c = n_members``)."""
    share = np.arange(1, n_members + 1) / n_members
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(share < 1, norm.pdf(norm.ppf(1 - share)) / share, 0.0)


def _absolute_bounds(members, rows, alpha):
    """Jackknife+ ends at ``m`` test points for the absolute score: ``(lower, upper)``, each of
    shape ``(m,)``.

    ``members`` is ``(K, m)``; ``rows`` the target's :class:`_Rows`. The lower end is minus the
    upper end of the negated members, so both ends are one search over ``2 m`` points (half the
    calls, which is most of the cost on small data).
    """
    n, m = len(rows.residual), members.shape[1]
    selection = _selection(rows.weight, n, alpha)
    if selection is None:
        return np.full(m, -np.inf), np.full(m, np.inf)
    rank, budget = selection
    if n * m <= _SMALL_SEARCH:  # one pass over every row costs less here
        centre = _product(members.T, rows.average)  # rows in any order: no sort needed
        values = np.empty((2 * m, n), dtype=centre.dtype)
        np.add(centre, rows.residual, out=values[:m])
        np.subtract(rows.residual, centre, out=values[m:])
        ends = _top_quantile(values, rows.weight, rank, budget)
        return -ends[m:], ends[:m]
    both = np.concatenate([members, -members], axis=1)  # (K, 2 m): upper, then lower problems
    ordered = rows.ordered()
    residual, average, weight = ordered.residual, ordered.average, ordered.weight
    head = (min(n, int(np.ceil(_HEAD_FACTOR * rank))) if weight is None else
            min(n, int(np.searchsorted(np.cumsum(weight), _HEAD_FACTOR * (budget + 1.0))) + 1))
    # Test points in chunks of about _CHUNK_ELEMENTS head values: memory stays bounded.
    ends = np.empty(2 * m)
    search = (residual, average, weight, ordered.groups, rank, budget, head)
    step = max(1, _CHUNK_ELEMENTS // head)
    for start in range(0, 2 * m, step):
        part = slice(start, start + step)
        centre = _product(both[:, part].T, average[:, :head])
        ends[part] = _upper_end(both[:, part], centre, *search)
    return -ends[m:], ends[:m]


def _upper_end(members, centre, residual, average, weight, groups, rank, budget, head):
    """The top quantile of ``v_i = mu_{-i}(x) + R_i`` at each test point, over the rows that can
    reach it; ``centre`` holds ``mu_{-i}(x)`` for the first ``head`` rows of the search's order.

    The quantile is the value at which the weight of the values, summed from the largest down,
    first exceeds ``budget`` (uniform weights: the ``rank``-th largest). Since ``mu_{-i}(x)`` is the
    mean of ``c_i`` member outputs, ``v_i <= R_i + (mean of the c_i largest f_k(x))``. The same
    quantile over any subset of the rows is at most the full one, so the head rows give a floor;
    a row whose bound is below the floor lies below the quantile and, removed, changes neither
    the walk down to it nor the budget. The rows evaluated are the prefix of ``residual``'s order
    up to the last row whose bound reaches the floor (found per band of counts in ``groups``),
    longer where the members disagree.
    """
    m = members.shape[1]
    head_weight = None if weight is None else weight[:head]
    floor = _top_quantile(centre + residual[:head], head_weight, rank, budget)
    # Row i can reach the floor only if R_i + (mean of the c_i largest member outputs) does;
    # slack for rounding in the members' precision: a few more rows, never one too few.
    K = members.shape[0]
    top = np.cumsum(-np.sort(-members, axis=0), axis=0) / np.arange(1, K + 1)[:, None]
    threshold = floor - 1e-4 * (residual.max() + np.abs(members).max(axis=0))
    length = np.full(m, head)
    for c, positions, negated in groups:
        reach = np.searchsorted(negated, top[c - 1] - threshold, side="right")
        np.maximum(length, np.where(reach > 0, positions[reach - 1] + 1, 0), out=length)

    # Points by decreasing prefix length, in groups whose lengths are within a factor of two
    # of their longest: a few points whose members disagree wildly (every row can matter there)
    # no longer make every point evaluate every row. A group is cut there only if that saves
    # more than _MERGE_ELEMENTS values: each group costs a few calls, which on small data is
    # more than evaluating the extra rows.
    end = np.empty(m)
    by_length = np.argsort(-length, kind="stable")
    ordered = length[by_length]
    summed = np.concatenate([[0], np.cumsum(ordered)])
    start = 0
    while start < m:
        longest = int(ordered[start])
        limit = min(m, start + max(1, _CHUNK_ELEMENTS // longest))
        stop = min(limit, start + int(np.searchsorted(-ordered[start:], -longest / 2,
                                                      side="left")))
        # What cutting at stop spares at most (the points after it would still be evaluated at
        # their own group's longest, not at their own lengths).
        if longest * (limit - stop) - (summed[limit] - summed[stop]) <= _MERGE_ELEMENTS:
            stop = limit
        points = by_length[start:max(stop, start + 1)]
        values = _product(members[:, points].T, average[:, :longest])
        values += residual[:longest]
        end[points] = _top_quantile(values, None if weight is None else weight[:longest], rank,
                                    budget)
        start += len(points)
    return end


def _product(a, b):
    """``a @ b`` through torch: NumPy's BLAS threads keep spinning after a call and then slow
    the members' next torch forward pass several-fold on a small machine."""
    return torch.from_numpy(np.ascontiguousarray(a)).mm(
        torch.from_numpy(np.ascontiguousarray(b))).numpy()


def _selection(weight, n, alpha):
    """What the jackknife+ end selects among ``n`` calibration values: ``(rank, None)``, the
    ``rank``-th largest (uniform weights, ``weight`` None), or ``(None, budget)``, the value at
    which the weight summed from the largest down first exceeds ``budget``. The end needs
    ``1 - alpha`` of the total weight plus one (the test point, at infinity) at or below it;
    None when the rows are too few for that (the end is infinite)."""
    if weight is None:
        rank = n - int(np.ceil((1 - alpha) * (n + 1) - 1e-9)) + 1
        return (rank, None) if rank >= 1 else None
    total = weight.sum()
    budget = total - (1 - alpha) * (total + 1)
    return (None, budget) if budget >= -1e-9 else None


def _jackknife_plus_end(values, weight, alpha):
    """The upper jackknife+ end at each test point from all ``values`` ``(m, n)``; ``+inf`` where
    the calibration rows are too few for ``1 - alpha``."""
    selection = _selection(weight, values.shape[1], alpha)
    if selection is None:
        return np.full(len(values), np.inf)
    return _top_quantile(np.array(values), weight, *selection)


def _top_quantile(values, weight, rank, budget):
    """Per row of ``values`` ``(m, S)``: the ``rank``-th largest value (``weight`` None), or the
    value at which the weight, summed from the largest value down, first exceeds ``budget``;
    ``-inf`` where it never does."""
    size = values.shape[1]
    if weight is None:
        if rank > size:
            return np.full(len(values), -np.inf)
        values.partition(size - rank, axis=1)
        return values[:, size - rank].astype(np.float64)
    order = np.argsort(-values, axis=1)
    cumulative = np.cumsum(weight[order], axis=1)
    exceeded = cumulative > budget + 1e-9
    first = np.argmax(exceeded, axis=1)
    chosen = np.take_along_axis(values, np.take_along_axis(order, first[:, None], axis=1), axis=1)
    return np.where(exceeded[:, -1], chosen[:, 0].astype(np.float64), -np.inf)


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
