"""Bootstrap resamples as per-member row counts, and which rows each member left out.

Resampling is expressed as counts (how many times member ``k`` drew row ``i``) used as loss
weights, so the data is held once, not ``K`` times. Three properties matter:

* **Member-wise.** Member ``k``'s draws come from its own stream ``(seed, "bootstrap", k)``: the
  same whatever other members are trained with it.
* **Row-order free.** Rows are drawn in a canonical order (by a hash of their content), so
  shuffling the training rows does not change the draws. (It changes the mini-batches, and so
  the trained members, unless training is full-batch.)
* **Weights act like repeated rows.** Rows are drawn in proportion to ``sample_weight`` by
  inverting the cumulative weight, and identical rows sit next to each other in the canonical
  order: a row of integer weight ``w`` is drawn exactly as often as ``w`` copies of it would be.

A copy of a training row is not new data, so identical rows are pooled when deciding what is out
of bag for the noise fit and early stopping: a row is in member ``k``'s bag if any copy of it is.
The conformal calibration goes by index instead, as jackknife+-after-bootstrap's guarantee needs
(``_uncertainty.out_of_bag_by_index``).
"""

from dataclasses import dataclass

import numpy as np

from ._seeding import numpy_rng, stream

# Each resample draws round(total weight) rows (an integer weight acts as repeated rows), at least
# one per row of positive weight and at most this many per such row: weights of 2.5e6 must not
# mean 1e8 draws. Above the cap, weights still set each row's probability.
MAX_DRAWS_PER_ROW = 10

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def splitmix64(h):
    """SplitMix64's finaliser on a uint64 array: a fast, well-mixed bijection (wraps mod 2**64)."""
    h = (h + _GOLDEN).astype(np.uint64)
    h = (h ^ (h >> np.uint64(30))) * _MIX_1
    h = (h ^ (h >> np.uint64(27))) * _MIX_2
    return h ^ (h >> np.uint64(31))


def row_hashes(*arrays):
    """A 64-bit hash of each row's content (the float64 bit patterns of every column).

    Identical rows get identical hashes; distinct rows collide with probability about
    ``n**2 / 2**65`` (3e-8 for a million rows), in which case they are pooled as one row.
    """
    n = len(arrays[0])
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for array in arrays:
            columns = np.asarray(array, dtype=np.float64).reshape(n, -1)
            for j in range(columns.shape[1]):
                bits = np.ascontiguousarray(columns[:, j] + 0.0).view(np.uint64)  # -0.0 -> 0.0
                h = splitmix64(h ^ bits)
    return h


def hash_key(seed, purpose, member=0):
    """A 64-bit key from ``(seed, purpose, member)``'s stream, to mix into row hashes."""
    return np.uint64(stream(seed, purpose, member).generate_state(1, dtype=np.uint64)[0])


def hash_uniform(hashes, key):
    """Uniform numbers in [0, 1) from row hashes and a key (53 bits of a mixed hash): a random
    number per row that depends on its content and the key only, not on where the row sits."""
    with np.errstate(over="ignore"):
        mixed = splitmix64(hashes ^ key)
    return (mixed >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _compact(counts):
    """The smallest unsigned integer type that holds ``counts``."""
    return counts.astype(np.min_scalar_type(int(counts.max(initial=0))))


def draw_counts(sample_weight, order, n_members, seed, members=None):
    """How many times each row is drawn in each member's bootstrap resample.

    Parameters
    ----------
    sample_weight : ndarray of shape (n,), non-negative with a positive sum
    order : ndarray of shape (n,)
        Canonical row order (identical rows adjacent).
    n_members : int
        Members in the whole ensemble (fixes the number of draws' rule, not the streams).
    seed : int
    members : sequence of int, optional
        Which members to draw for; all by default.

    Returns
    -------
    counts : ndarray of shape (n, len(members)), smallest unsigned integer type
    """
    members = range(n_members) if members is None else members
    n = len(sample_weight)
    positive = int(np.count_nonzero(sample_weight))
    peak = sample_weight.max()
    relative = sample_weight / peak
    with np.errstate(over="ignore"):
        total = float(relative.sum()) * float(peak)  # inf past float64, then capped
    n_draws = int(np.clip(np.round(total), positive, MAX_DRAWS_PER_ROW * positive))
    cumulative = np.cumsum(relative[order])
    counts = np.empty((n, len(members)), dtype=np.uint32)
    for column, k in enumerate(members):
        u = numpy_rng(seed, "bootstrap", k).random(n_draws) * cumulative[-1]
        drawn = np.searchsorted(cumulative, u, side="right").clip(max=n - 1)
        counts[order, column] = np.bincount(drawn, minlength=n)
    return _compact(counts)


def pooled_in_bag(in_bag, hashes, order):
    """Treat identical rows as one: a row is in member ``k``'s bag if any copy of it is.

    Parameters
    ----------
    in_bag : ndarray of shape (n, K), bool
    hashes : ndarray of shape (n,)
        Row hashes (:func:`row_hashes`).
    order : ndarray of shape (n,)
        Permutation sorting ``hashes``.
    """
    sorted_hashes = hashes[order]
    starts = np.flatnonzero(np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]])
    if len(starts) == len(order):  # no duplicates: nothing to pool
        return in_bag
    pooled = np.logical_or.reduceat(in_bag[order], starts, axis=0)
    group = np.empty(len(order), dtype=np.intp)
    group[order] = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(order)]))
    return pooled[group]


@dataclass(frozen=True)
class Bag:
    """Which rows each member trains on, and how often.

    Attributes
    ----------
    counts : ndarray of shape (n, K), unsigned int
        Draws of each row per member (1 or 0 without bootstrap).
    in_bag : ndarray of shape (n, K), bool
        Pooled over identical rows: whether member ``k`` saw row ``i`` or a copy of it.
    bootstrap : bool
    hashes : ndarray of shape (n,), uint64, or None
        The rows' content hashes (``row_hashes`` of the raw ``X`` and ``y``), where computed: they
        pick the conformal calibration rows when there are too many, whatever the rows' order.
    """

    counts: np.ndarray
    in_bag: np.ndarray
    bootstrap: bool
    hashes: np.ndarray = None

    def loss_weights(self, sample_weight):
        """Per-row, per-member loss weights: the counts (which already follow the sample weights
        when bootstrapping), else the sample weights of the rows in use."""
        if self.bootstrap:
            return self.counts.astype(np.float64)
        return self.counts * (sample_weight / sample_weight.max())[:, None]

    def out_of_bag_weights(self, sample_weight):
        """Sample weights of the rows each member left out (None without bootstrap)."""
        if not self.bootstrap:
            return None
        return ~self.in_bag * (sample_weight / sample_weight.max())[:, None]


def make_bag(X, y, sample_weight, n_members, seed, bootstrap=True):
    """The bootstrap resample (or, without bootstrap, every row of positive weight) of each member.

    Parameters
    ----------
    X, y : ndarrays of shape (n, d) and (n, t)
    sample_weight : ndarray of shape (n,)
    n_members : int
    seed : int
    bootstrap : bool, default=True

    Returns
    -------
    bag : Bag
    """
    if not bootstrap:
        used = np.repeat(sample_weight[:, None] > 0, n_members, axis=1)
        return Bag(used.astype(np.uint8), used, False)
    hashes = row_hashes(X, y)
    order = np.argsort(hashes, kind="stable")
    counts = draw_counts(sample_weight, order, n_members, seed)
    return Bag(counts, pooled_in_bag(counts > 0, hashes, order), True, hashes)
