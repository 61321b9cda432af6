"""Covariate-shift splits of a data set: a "gap" or the two ends along one input feature.

One split per (kind, feature), as the gap splits of Foong et al., "'In-Between' Uncertainty
in Bayesian Neural Networks" (2019):

- ``gap``: the rows in the middle third of the feature's order are the out-of-distribution
  (OOD) test rows;
- ``extrapolation``: the rows in the bottom sixth and the top sixth are.

Ties. Rows with the same value of the feature always fall on the same side, so the OOD rows
really lie between (or beyond) the training rows' values of that feature. A row goes by the
*mid-rank* of its value, ``q = (average rank - 0.5) / n`` (the plain rank when values are
distinct): OOD when ``1/3 < q <= 2/3`` (gap) or ``q <= 1/6 or q > 5/6`` (extrapolation). With
many distinct values this is the rank cut; with few (energy's and yacht's design variables),
the OOD share differs from a third, and a (kind, feature) whose OOD share is outside
[``MIN_OOD_SHARE``, ``MAX_OOD_SHARE``] is skipped and listed with its share (e.g. energy's
two-valued feature 4, whose groups both sit at q = 1/4 and 3/4: nothing is held out).

Of the remaining, in-distribution rows a seeded random ``ID_TEST_SHARE`` is the
in-distribution test set (for the in-distribution NLL and for the AUROC of telling OOD rows
from in-distribution rows); the rest is the training set.
"""

import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata

KINDS = ("gap", "extrapolation")
ID_TEST_SHARE = 0.1
MIN_OOD_SHARE = 0.10
MAX_OOD_SHARE = 0.50


@dataclass(frozen=True)
class ShiftSplit:
    dataset: str
    kind: str
    feature: int
    ood_share: float
    train: np.ndarray = field(repr=False)
    ood: np.ndarray = field(repr=False)
    id_test: np.ndarray = field(repr=False)
    skipped: str = ""


def mid_rank_quantile(values):
    """``(average rank - 0.5) / n`` of each value: tied values share one, in (0, 1)."""
    return (rankdata(values, method="average") - 0.5) / len(values)


def ood_mask(values, kind):
    q = mid_rank_quantile(values)
    if kind == "gap":
        return (q > 1 / 3) & (q <= 2 / 3)
    if kind == "extrapolation":
        return (q <= 1 / 6) | (q > 5 / 6)
    raise ValueError(f"Unknown kind {kind!r}; expected one of {KINDS}.")


def split_seed(dataset, kind, feature):
    """A seed per (dataset, kind, feature), the same on every machine and Python."""
    return [zlib.crc32(dataset.encode()), KINDS.index(kind), feature]


def make_split(X, dataset, kind, feature):
    """The split of ``X``'s rows for one (kind, feature); ``skipped`` says why if there is none."""
    ood = ood_mask(X[:, feature], kind)
    share = float(ood.mean())
    empty = np.array([], dtype=int)
    if not MIN_OOD_SHARE <= share <= MAX_OOD_SHARE:
        reason = (f"OOD share {share:.2f} outside [{MIN_OOD_SHARE}, {MAX_OOD_SHARE}] "
                  f"({len(np.unique(X[:, feature]))} distinct values)")
        return ShiftSplit(dataset, kind, feature, share, empty, empty, empty, skipped=reason)
    inside = np.flatnonzero(~ood)
    rng = np.random.default_rng(split_seed(dataset, kind, feature))
    n_test = max(1, round(ID_TEST_SHARE * len(inside)))
    id_test = np.sort(rng.choice(inside, n_test, replace=False))
    train = np.setdiff1d(inside, id_test)
    return ShiftSplit(dataset, kind, feature, share, train, np.flatnonzero(ood), id_test)


def make_splits(X, dataset, kinds, features):
    """Every (kind, feature) split of ``X``, skipped ones included (with their reason)."""
    return [make_split(X, dataset, kind, feature) for kind in kinds for feature in features]
