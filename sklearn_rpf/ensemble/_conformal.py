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
test point. Rows that every member drew have no out-of-bag prediction and are left out.
"""

from dataclasses import dataclass

import numpy as np

# Test points per chunk keep the (calibration rows x test points) matrices near this many floats.
_CHUNK_ELEMENTS = 2_000_000
SCORES = ("absolute", "studentized")


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
    """

    residuals: np.ndarray
    scales: np.ndarray
    out_of_bag: np.ndarray
    weight: np.ndarray
    n_members: int

    @classmethod
    def from_out_of_bag(cls, y, oob, out_of_bag, sample_weight, epistemic_scale, noise):
        """Calibration rows: those of positive weight with at least one out-of-bag member.

        ``oob`` is the ``_uncertainty.OutOfBag`` summary of the training rows, ``out_of_bag`` the
        ``(n, K)`` boolean mask it was computed from; ``epistemic_scale`` and ``noise`` are the
        fitted factors (standardised units) that make up ``s_{-i}``.
        """
        rows = (oob.n_members >= 1) & (sample_weight > 0)
        if rows.sum() < 1:
            return None
        mask = out_of_bag[rows]
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
        )

    @property
    def n_rows(self):
        return len(self.residuals)

    def _mask(self):
        return np.unpackbits(self.out_of_bag, axis=1, count=self.n_members).astype(np.float64)

    def intervals(self, batches, alpha, score, epistemic_scale, noise):
        """Lower and upper bounds (standardised units) for batches of test points.

        Parameters
        ----------
        batches : iterable of (rows, means, variances)
            Member outputs on the test points, as ``FittedEnsemble.batches`` yields them.
        alpha : float
            1 - confidence.
        score : {"absolute", "studentized"}
        epistemic_scale, noise : ndarrays of shape (t,)

        Returns
        -------
        pieces : list of (rows, lower, upper)
            For each batch, its slice of the test points and the bounds there, each of shape
            ``(n_rows, t)``.
        """
        mask = self._mask()
        counts = mask.sum(axis=1, keepdims=True)
        average = mask / counts  # mu_{-i}(x) = average @ member outputs
        pieces = []
        chunk = max(1, _CHUNK_ELEMENTS // self.n_rows)
        for rows, means, variances in batches:
            lower = np.empty(means.shape[1:])
            upper = np.empty(means.shape[1:])
            for start in range(0, means.shape[1], chunk):
                part = slice(start, start + chunk)
                for j in range(means.shape[2]):
                    M = means[:, part, j]  # (K, m)
                    centre = average @ M  # (n_cal, m)
                    if score == "absolute":
                        half = np.abs(self.residuals[:, j])[:, None]
                    else:
                        spread = _leave_out_spread(average, counts, M, centre)
                        base = None if variances is None else average @ variances[:, part, j]
                        s = _predictive_std(spread, epistemic_scale[j], noise[j], base)
                        half = np.abs(self.residuals[:, j] / self.scales[:, j])[:, None] * s
                    lower[part, j] = -_upper_quantile(-(centre - half), self.weight, alpha)
                    upper[part, j] = _upper_quantile(centre + half, self.weight, alpha)
            pieces.append((rows, lower, upper))
        return pieces


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


def _upper_quantile(values, weight, alpha):
    """The jackknife+ upper bound: the smallest ``v`` with at least ``(1 - alpha)`` of the total
    weight, counting one extra point at infinity, at or below it; infinity if there is none.

    ``values`` has shape ``(n_cal, m)``; ``weight`` shape ``(n_cal,)`` (relative to the mean).
    """
    n = len(weight)
    needed = (1 - alpha) * (weight.sum() + 1.0)
    if np.all(weight == 1.0):  # the common case: a partial sort, O(n) per test point
        k = int(np.ceil(needed - 1e-9))
        if k > n:
            return np.full(values.shape[1], np.inf)
        return np.partition(values, k - 1, axis=0)[k - 1]
    order = np.argsort(values, axis=0)
    cumulative = np.cumsum(weight[order], axis=0)
    first = np.argmax(cumulative >= needed - 1e-9, axis=0)
    reached = cumulative[-1] >= needed - 1e-9
    chosen = np.take_along_axis(values, np.take_along_axis(order, first[None], axis=0), axis=0)[0]
    return np.where(reached, chosen, np.inf)
