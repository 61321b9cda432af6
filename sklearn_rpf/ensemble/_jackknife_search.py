"""The jackknife+ search: both ends of the absolute-score interval at many test points.

At a test point ``x`` the upper end is the top ``alpha``-quantile of ``v_i = mu_{-i}(x) + R_i`` over
the calibration rows (``_conformal``), the lower end minus that of ``R_i - mu_{-i}(x)``.

Cost at predict time. Done naively, each test point needs all ``n`` values ``mu_{-i}(x) +/- R_i``
and a selection among them. For the absolute score most rows cannot matter: ``mu_{-i}(x)``, the
mean of the ``c_i`` members that left row ``i`` out, is at most the mean of the ``c_i`` largest
member outputs at ``x``. The rows are ordered so that those that can reach an end come first
(``search_order``: by ``|R_i|`` plus the members' typical spread times how far a mean of that
many members can reach). The same quantile over the first rows of that order alone is a lower
bound on the end (a floor); then only the prefix of the order up to the last row whose bound
(``R_i`` plus that mean, for the smallest count of its band of counts) reaches the floor is
evaluated, in groups of test points with prefixes of similar length; where that is many values,
the selection is only among the values above the floor (``_with_entrants``). The ends are those
of the full computation (``_upper_end``), up to the rounding of the products in the members'
precision.
The rows are stored in that order at fit time (for the first target), so a single-target model
never sorts at predict time; what the search reads (the averaging weights, ``K`` floats a row,
and for each further target its own reordered copy) is built at the first call and kept, not
pickled. Below ``_SMALL_SEARCH`` (rows x test points) one pass over every row is cheaper than
pruning's two, and is what runs. On small data a call's fixed costs matter as much as the values
it evaluates, so the two ends run as one search, and groups of test points are merged unless
splitting them spares enough values.
"""

import functools

import numpy as np
import torch
from scipy.stats import norm

from .._devices import autocast_off

# Test points per chunk keep the (calibration rows x test points) matrices near this many floats.
CHUNK_ELEMENTS = 500_000
# Below this many (rows x test points) the pruned search is not worth its first pass.
# `python -m benchmarks.bench_conformal` (2026-12-03 23:05 UTC, medians over splits 0 and 1):
# one pass wins on yacht (8.6k: 0.91 against 1.23 ms pruned), ties on energy (53k: 2.38 against
# 2.48; 1.47 against 1.49 in another run), loses on concrete (95k: 2.55 against 2.28) and wine
# (230k: 5.85 against 4.13).
_SMALL_SEARCH = 25_000
# A group of test points in the pruned search is split off only if that spares more values than
# this, and selects among the values above its floor alone (_with_entrants) only if it has more
# than this many past the head: about what a group's own calls cost in evaluated values.
_MERGE_ELEMENTS = 10_000
# The pruned search's first pass reads this many times the selected rank of rows (the first of
# the search's order) to set its floor. `python -m benchmarks.bench_conformal --datasets kin8nm
# wine-quality-red concrete energy --head-factors 1.1 1.25 1.5 2 3` (2026-12-03, two runs, ms):
# kin8nm 27.8/25.1 at 1.1, 22.0/21.6 at 1.25, 23.5/22.2 at 1.5, 25.0/22.4 at 2, 28.7/27.1 at 3;
# wine, concrete and energy within 13% from 1.25 to 3.
_HEAD_FACTOR = 1.5
# The pruned search bounds the rows by how many members left them out, in bands of counts that
# start at these values (about 25% apart, so any number of members gets a few bands), each with
# the bound of the smallest count it holds: one search per band.
_COUNT_BANDS = np.unique(np.round(1.25 ** np.arange(64)).astype(np.int64))


class Rows:
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
    """Calibration rows in the pruned search's order (:func:`search_order`; ``typical_std`` None:
    they are in it), and per band of counts of out-of-bag members (:func:`_bands`) its smallest
    count, the positions of its rows in that order and their ``-|R_i|``, increasing, which
    decide exactly which rows can reach an end."""

    def __init__(self, residual, average, weight, typical_std):
        counts = np.count_nonzero(average, axis=0)
        if typical_std is not None:
            order = search_order(residual, counts, average.shape[0], typical_std)
            residual, average = residual[order], np.ascontiguousarray(average[:, order])
            weight, counts = None if weight is None else weight[order], counts[order]
        self.residual, self.average, self.weight = residual, average, weight
        band, smallest = _bands(counts)
        self.groups = []
        for b in np.unique(band):
            positions = np.flatnonzero(band == b)
            negated = -residual[positions]
            if np.any(negated[1:] < negated[:-1]):
                # Rows not in the search's order (e.g. another target's |R_i|): by |R_i| here,
                # and for each prefix of these rows the last position any of them holds.
                positions = positions[np.argsort(negated, kind="stable")]
                negated = -residual[positions]
                positions = np.maximum.accumulate(positions)
            self.groups.append((int(smallest[b]), positions, negated))


def _bands(counts):
    """Each row's band of out-of-bag counts (``_COUNT_BANDS``) and, per band, the smallest count
    among the rows in it (0 where none is)."""
    band = np.searchsorted(_COUNT_BANDS, counts, side="right") - 1
    smallest = np.zeros(len(_COUNT_BANDS), dtype=np.int64)
    for b in np.unique(band):
        smallest[b] = counts[band == b].min()
    return band, smallest


def search_order(residual, counts, n_members, typical_std):
    """Rows by decreasing ``|R_i| + typical_std * g(c)``, ties by decreasing ``|R_i|``, with ``c``
    the smallest count of out-of-bag members in row ``i``'s band (:func:`_bands`).

    ``mu_{-i}(x)``, the mean of the ``c_i`` members that left row ``i`` out, is at most the mean
    of the ``c_i`` largest member outputs at ``x``, so rows left out by few members can reach
    further; the search bounds each band's rows with its smallest count. ``g(c)`` is about that
    mean for ``n_members`` standard normal outputs (the mean of a normal above its ``1 - c / K``
    quantile): with members whose standard deviation is near ``typical_std``, the rows that can
    reach an end come first and the evaluated prefix is short, and within a band the rows are
    by decreasing ``|R_i|``. The order decides only how long the prefix is, never which rows are
    counted.
    """
    band, smallest = _bands(np.asarray(counts))
    key = residual + typical_std * _reach(n_members)[smallest[band] - 1]
    return np.lexsort((-residual, -key))


@functools.lru_cache
def _reach(n_members):
    """``g(c)`` of ``search_order`` for ``c = 1 .. n_members`` (0 at ``c = n_members``)."""
    share = np.arange(1, n_members + 1) / n_members
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(share < 1, norm.pdf(norm.ppf(1 - share)) / share, 0.0)


def absolute_bounds(members, rows, alpha):
    """Jackknife+ ends at ``m`` test points for the absolute score: ``(lower, upper)``, each of
    shape ``(m,)``.

    ``members`` is ``(K, m)``; ``rows`` the target's :class:`Rows`. The lower end is minus the
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
    # Test points in chunks of about CHUNK_ELEMENTS head values: memory stays bounded.
    ends = np.empty(2 * m)
    search = (residual, average, weight, ordered.groups, rank, budget, head)
    step = max(1, CHUNK_ELEMENTS // head)
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
    head_values = centre + residual[:head]
    if weight is None:
        # The head's rank largest values (the floor the smallest of them) stay for the end:
        # past the head only the values above the floor need selecting (_with_entrants).
        head_values.partition(head - rank, axis=1)
        head_top = head_values[:, head - rank:]
        floor = head_top[:, 0].astype(np.float64)
    else:
        head_top, floor = None, _top_quantile(head_values, weight[:head], rank, budget)
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
        limit = min(m, start + max(1, CHUNK_ELEMENTS // longest))
        stop = min(limit, start + int(np.searchsorted(-ordered[start:], -longest / 2,
                                                      side="left")))
        # What cutting at stop spares at most (the points after it would still be evaluated at
        # their own group's longest, not at their own lengths).
        if longest * (limit - stop) - (summed[limit] - summed[stop]) <= _MERGE_ELEMENTS:
            stop = limit
        points = by_length[start:max(stop, start + 1)]
        if head_top is not None and len(points) * (longest - head) > _MERGE_ELEMENTS:
            end[points] = _with_entrants(head_top[points], head_top[points, 0],
                                         members[:, points], average[:, head:longest],
                                         residual[head:longest])
        else:  # weighted, or too few values past the head to repay _with_entrants' calls
            values = _product(members[:, points].T, average[:, :longest])
            values += residual[:longest]
            end[points] = _top_quantile(values, None if weight is None else weight[:longest],
                                        rank, budget)
        start += len(points)
    return end


def _with_entrants(top, floor, members, average, residual):
    """The ``rank``-th largest value over a prefix of the rows (uniform weights), from the head's
    ``rank`` largest values ``top`` ``(m, rank)``, whose smallest is ``floor``, and the values of
    the prefix's other rows (``average`` and ``residual``, past the head) that exceed the floor.

    Every value left out is at most the floor, which is at most the end; counts above any value
    from the floor up are those of the whole prefix, so the end is the same, and only about
    ``rank`` values a point are selected among instead of the whole prefix.
    """
    rank = top.shape[1]
    rest = _product(members.T, average)
    rest += residual
    point, column = np.nonzero(rest > floor[:, None])
    counts = np.bincount(point, minlength=len(top))
    width = rank + int(counts.max())
    merged = np.full((len(top), width), -np.inf, dtype=top.dtype)
    merged[:, :rank] = top
    slot = np.arange(len(point)) - np.repeat(np.cumsum(counts) - counts, counts)
    merged[point, rank + slot] = rest[point, column]
    merged.partition(width - rank, axis=1)
    return merged[:, width - rank].astype(np.float64)


def _product(a, b):
    """``a @ b`` through torch: NumPy's BLAS threads keep spinning after a call and then slow
    the members' next torch forward pass several-fold on a small machine."""
    a, b = torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))
    with autocast_off():  # in a caller's autocast block it would run in bfloat16
        return a.mm(b).numpy()


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


def jackknife_plus_end(values, weight, alpha):
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
