"""From member predictions to a predictive distribution, and its calibration out of bag.

The ensemble's predictive distribution at ``x`` is summarised by a mean and a variance:

* the **epistemic** variance is the spread of the member means (sample variance, ``ddof=1``);
* the **aleatoric** variance is the noise: a constant per target (squared-error members) or the
  members' average predicted variance (heteroscedastic members), times a scale.

The noise level is estimated from the out-of-bag rows, which each member's bootstrap resample
left out (about a third of the rows per member): it is the maximum-likelihood value of the noise
under ``y_i ~ N(oob_mean_i, epistemic_i + noise_i)``, where ``oob_mean_i`` and ``epistemic_i`` come
from the members that did not see row ``i``. Those rows play the part of new data, so the
predictive distribution is calibrated on held-out rows rather than on the training fit.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from ._conformal import OutOfBagCalibration, calibration_rows

# A row needs at least this many members that did not train on it to estimate a spread.
MIN_OOB_MEMBERS = 2
# Range of the out-of-bag factor on the members' variance (calibrate_epistemic=True): wide enough to
# correct a prior that is too strong or too weak, narrow enough to keep the spread's shape meaningful.
EPISTEMIC_SCALE_BOUNDS = (0.1, 10.0)


def ensemble_moments(means, variances=None):
    """Mean, epistemic variance and aleatoric variance of the member predictions.

    Parameters
    ----------
    means : ndarray of shape (K, n, t)
        Member means.
    variances : ndarray of shape (K, n, t), optional
        Member noise variances (heteroscedastic members).

    Returns
    -------
    mean, epistemic, aleatoric : ndarrays of shape (n, t)
        ``aleatoric`` is None without ``variances``.
    """
    mean = means.mean(axis=0)
    ddof = 1 if means.shape[0] > 1 else 0
    epistemic = means.var(axis=0, ddof=ddof)
    aleatoric = None if variances is None else variances.mean(axis=0)
    return mean, epistemic, aleatoric


@dataclass
class OutOfBag:
    """What the members that did not train on each row say about it.

    Attributes
    ----------
    n_members : ndarray of shape (n,)
        Members for which the row is out of bag.
    mean : ndarray of shape (n, t)
        Their mean prediction (NaN where ``n_members == 0``).
    epistemic : ndarray of shape (n, t)
        Their spread as an estimate of the full ensemble's epistemic variance at that row
        (NaN where ``n_members < 2``).
    base : ndarray of shape (n, t) or None
        Heteroscedastic members: their average predicted variance.
    """

    n_members: np.ndarray
    mean: np.ndarray
    epistemic: np.ndarray
    base: object = None

    @classmethod
    def from_batches(cls, batches, out_of_bag, n_targets):
        """Accumulate from ``(rows, means, variances)`` batches of member outputs.

        ``means`` and ``variances`` (or None) have shape ``(K, n_rows, t)`` for the slice
        ``rows``; ``out_of_bag`` is ``(n, K)`` bool. Only one batch of member outputs is held at a
        time.
        """
        n, n_total = out_of_bag.shape
        counts = out_of_bag.sum(axis=1)
        mean = np.full((n, n_targets), np.nan)
        epistemic = np.full((n, n_targets), np.nan)
        base = None
        for rows, means, variances in batches:
            mask = out_of_bag[rows].T[..., None]  # (K, nb, 1)
            k = counts[rows, None].astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                m = np.where(mask, means, 0.0).sum(axis=0) / k
                spread = np.where(mask, (means - m) ** 2, 0.0).sum(axis=0) / (k - 1)
                # The out-of-bag mean averages fewer members than the full ensemble, so its own
                # sampling error is larger: add the difference (variance / k_i - variance / K).
                epistemic[rows] = spread * (1.0 + 1.0 / k - 1.0 / n_total)
                mean[rows] = m
                if variances is not None:
                    if base is None:
                        base = np.full((n, n_targets), np.nan)
                    base[rows] = np.where(mask, variances, 0.0).sum(axis=0) / k
        epistemic[counts < MIN_OOB_MEMBERS] = np.nan
        return cls(counts, mean, epistemic, base)

    def with_rows(self, rows, other):
        """A copy whose rows ``rows`` are replaced by ``other``'s, an OutOfBag of those rows."""
        def put(mine, theirs):
            if mine is None:
                return None
            out = mine.copy()
            out[rows] = theirs
            return out

        return OutOfBag(put(self.n_members, other.n_members), put(self.mean, other.mean),
                        put(self.epistemic, other.epistemic), put(self.base, other.base))


def _share_with_copies(hashes):
    """Share of the rows whose content hash (``X`` and ``y``) another row shares."""
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    return float(np.mean(counts[inverse] > 1))


def out_of_bag_by_index(fitted, X, bag, pooled, sample_weight, by_index, rows):
    """The out-of-bag sets of the conformal calibration: for row ``i``, the members that did not
    draw row ``i`` itself, as in Kim et al.'s construction, on which their guarantee rests.

    The noise fit's sets (``pooled``, from ``~bag.in_bag``) also leave out members that drew a copy
    of the row. Under exchangeability a test point repeats a training row as often as the training
    rows repeat each other, so the jackknife+ residuals must be taken by index; pooled, a row with
    one copy keeps about 2.7 members of 20 rather than 7.4, and its noisier residual widens every
    interval. Only rows whose two sets differ and that the calibration keeps (``rows``, from
    :func:`calibration_rows` on the sets returned here) are predicted again.

    ``by_index`` is ``bag.counts == 0``, the ``(n, K)`` sets by index.

    Returns
    -------
    oob : OutOfBag
        By index on the calibration rows (other rows as in ``pooled``: they are not read).
    copies_matter : bool
        Whether any row of positive weight has a copy that a member drew without the row.
    """
    differ = (by_index != ~bag.in_bag).any(axis=1) & (sample_weight > 0)
    if not differ.any():
        return pooled, False
    rows = rows[differ[rows]]
    if len(rows) == 0:
        return pooled, True
    part = OutOfBag.from_batches(fitted.batches(X[rows]), by_index[rows], fitted.n_targets)
    return pooled.with_rows(rows, part), True


def _fit_scales(residual2, epistemic, base, weight, epistemic_bounds):
    """Maximum-likelihood ``(a, c)`` in ``residual ~ N(0, a * epistemic + c * base)``."""
    log_bounds = [tuple(np.log(epistemic_bounds)), (-25.0, 10.0)]

    def nll(theta):
        variance = np.exp(theta[0]) * epistemic + np.exp(theta[1]) * base
        return np.sum(weight * (np.log(variance) + residual2 / variance)) / weight.sum()

    start = [np.clip(0.0, *log_bounds[0]), np.log(max(np.average(residual2, weights=weight), 1e-10))]
    result = minimize(nll, start, method="L-BFGS-B", bounds=log_bounds)
    return float(np.exp(result.x[0])), float(np.exp(result.x[1]))


def fit_noise(y, oob, sample_weight, epistemic_bounds=(1.0, 1.0)):
    """Fit the aleatoric scale (and optionally a factor on the spread) of each target out of bag.

    Parameters
    ----------
    y : ndarray of shape (n, t)
        Training targets (normalised units).
    oob : OutOfBag
    sample_weight : ndarray of shape (n,)
    epistemic_bounds : (float, float), default=(1.0, 1.0)
        Range of the factor fitted on the members' spread; (1, 1) keeps the spread as it is.

    Returns
    -------
    epistemic_scale, noise_scale : ndarrays of shape (t,)
        The factor on the epistemic variance, and: squared-error members, the noise variance;
        heteroscedastic members, the factor applied to their average predicted variance.
        None when fewer than two rows have at least two out-of-bag members.
    """
    rows = (oob.n_members >= MIN_OOB_MEMBERS) & (sample_weight > 0)
    if rows.sum() < 2:
        return None
    residual2 = (y[rows] - oob.mean[rows]) ** 2
    base = np.ones_like(residual2) if oob.base is None else oob.base[rows]
    weight = sample_weight[rows] / sample_weight[rows].max()
    scales = np.array([
        _fit_scales(residual2[:, j], oob.epistemic[rows, j], base[:, j], weight, epistemic_bounds)
        for j in range(y.shape[1])
    ])
    return scales[:, 0], scales[:, 1]


def in_sample_noise(y, mean, sample_weight, heteroscedastic):
    """The fallback without out-of-bag rows: training residuals (optimistic), scale 1 on the
    spread; heteroscedastic members keep their own variances (factor 1)."""
    n_targets = y.shape[1]
    if heteroscedastic:
        return np.ones(n_targets), np.ones(n_targets)
    weight = sample_weight / sample_weight.max()
    return np.ones(n_targets), np.average((y - mean) ** 2, axis=0, weights=weight)


def balanced_picks(n_members, n_draws, rng):
    """Members for ``n_draws`` draws: every member ``n_draws // n_members`` times, the rest
    distinct members, shuffled. By symmetry each draw is uniform over the members."""
    rounds, rest = divmod(n_draws, n_members)
    picks = np.concatenate([np.tile(np.arange(n_members), rounds),
                            rng.choice(n_members, size=rest, replace=False)])
    return rng.permutation(picks)


def draw_functions(means, variances, members, epistemic_scale, noise, rng):
    """Draws of ``y`` at a batch of points: member ``members[s]`` plus noise, for each draw ``s``.

    The chosen member's deviation from the ensemble mean is scaled so that, over members, the
    draws have the variance ``predict`` reports (``epistemic_scale`` times the ``ddof=1`` spread);
    then Gaussian noise of the fitted variance (times the member's own predicted variance for
    heteroscedastic members) is added. Returns ``(n, t, n_draws)`` in standardised units.
    """
    n_members = means.shape[0]
    mean = means.mean(axis=0)
    inflate = np.sqrt(epistemic_scale * (n_members / (n_members - 1) if n_members > 1 else 1.0))
    chosen = mean + inflate * (means[members] - mean)  # (n_draws, n, t)
    aleatoric = noise if variances is None else noise * variances[members]
    draws = chosen + np.sqrt(aleatoric) * rng.standard_normal(chosen.shape)
    return draws.transpose(1, 2, 0)


@dataclass(frozen=True)
class Calibration:
    """What fit learns after training, in standardised target units.

    Attributes
    ----------
    epistemic_scale : ndarray of shape (t,)
    noise : ndarray of shape (t,)
        Squared-error members: the noise variance; heteroscedastic members: the factor on their
        average predicted variance.
    conformal : OutOfBagCalibration or None
        The out-of-bag residuals of conformal intervals (None without out-of-bag rows).
    """

    epistemic_scale: np.ndarray
    noise: np.ndarray
    conformal: object = None


def calibrate(fitted, X, y, bag, sample_weight, calibrate_epistemic=False, heteroscedastic=False, *,
              seed):
    """Fit the factor on the spread and the noise on the out-of-bag rows when there are enough of
    them, else (optimistically) on the training residuals; keep the conformal residuals.

    Parameters
    ----------
    fitted : FittedEnsemble
    X : ndarray of shape (n, d)
        Raw training inputs.
    y : ndarray of shape (n, t)
        Standardised training targets.
    bag : Bag
    sample_weight : ndarray of shape (n,)
    calibrate_epistemic, heteroscedastic : bool
    seed : int
        The model's seed: it keys the hash that picks the conformal calibration rows where there
        are too many.

    Returns
    -------
    calibration : Calibration
    """
    scales = oob = None
    if bag.bootstrap:
        oob = OutOfBag.from_batches(fitted.batches(X), ~bag.in_bag, fitted.n_targets)
        bounds = EPISTEMIC_SCALE_BOUNDS if calibrate_epistemic else (1.0, 1.0)
        scales = fit_noise(y, oob, sample_weight, bounds)
    if scales is None:
        mean = np.empty_like(y)
        for rows, means, _ in fitted.batches(X):
            mean[rows] = means.mean(axis=0)
        scales = in_sample_noise(y, mean, sample_weight, heteroscedastic)
    conformal = None
    if oob is not None:
        # By index, row i is out of bag where no member drew it: the calibration's rows are
        # picked once from those sets, for the re-prediction and for the residuals alike.
        out_of_bag = bag.counts == 0
        rows = calibration_rows(out_of_bag.any(axis=1) & (sample_weight > 0), bag.hashes, seed)
        by_index, copies_matter = out_of_bag_by_index(fitted, X, bag, oob, sample_weight,
                                                      out_of_bag, rows)
        conformal = OutOfBagCalibration.from_out_of_bag(
            y, by_index, out_of_bag, sample_weight, *scales, bag.hashes, seed,
            repeated=_share_with_copies(bag.hashes[sample_weight > 0]) if copies_matter else 0.0,
            rows=rows)
    return Calibration(*scales, conformal)
