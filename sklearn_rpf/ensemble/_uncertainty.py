"""From member predictions to a predictive distribution.

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

import numpy as np
from scipy.optimize import minimize

# A row needs at least this many members that did not train on it to estimate a spread.
MIN_OOB_MEMBERS = 2


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


def _fit_scales(residual2, epistemic, base, weight, epistemic_bounds):
    """Maximum-likelihood ``(a, c)`` in ``residual ~ N(0, a * epistemic + c * base)``."""
    log_bounds = [tuple(np.log(epistemic_bounds)), (-25.0, 10.0)]

    def nll(theta):
        variance = np.exp(theta[0]) * epistemic + np.exp(theta[1]) * base
        return np.sum(weight * (np.log(variance) + residual2 / variance)) / weight.sum()

    start = [np.clip(0.0, *log_bounds[0]), np.log(max(np.average(residual2, weights=weight), 1e-10))]
    result = minimize(nll, start, method="L-BFGS-B", bounds=log_bounds)
    return float(np.exp(result.x[0])), float(np.exp(result.x[1]))


def out_of_bag_noise(y, means, variances, in_bag, sample_weight, epistemic_bounds=(1.0, 1.0)):
    """Estimate the aleatoric scale of each target from out-of-bag residuals.

    Parameters
    ----------
    y : ndarray of shape (n, t)
        Training targets (normalised units).
    means : ndarray of shape (K, n, t)
        Member means on the training rows.
    variances : ndarray of shape (K, n, t) or None
        Member noise variances (heteroscedastic members) or None.
    in_bag : ndarray of shape (n, K), bool
        Whether member ``k`` trained on row ``i``.
    sample_weight : ndarray of shape (n,)
    epistemic_bounds : (float, float), default=(1.0, 1.0)
        Range of the factor fitted on the members' spread; (1, 1) keeps the spread as it is.

    Returns
    -------
    epistemic_scale, noise_scale : ndarrays of shape (t,)
        The factor on the epistemic variance, and: squared-error members, the noise variance;
        heteroscedastic members, the factor applied to their average predicted variance.
        None when too few rows are out of bag.
    """
    K = means.shape[0]
    out_of_bag = ~in_bag.T  # (K, n)
    n_oob = out_of_bag.sum(axis=0)
    rows = (n_oob >= MIN_OOB_MEMBERS) & (sample_weight > 0)
    if rows.sum() < 2:
        return None
    mask = out_of_bag[:, rows, None]
    k_i = n_oob[rows, None].astype(float)
    oob_mean = np.where(mask, means[:, rows], 0.0).sum(axis=0) / k_i
    oob_var = np.where(mask, (means[:, rows] - oob_mean) ** 2, 0.0).sum(axis=0) / (k_i - 1)
    # The out-of-bag mean averages fewer members than the full ensemble, so its own sampling
    # error is larger: add the difference (member variance / k_i - member variance / K).
    epistemic = oob_var * (1.0 + 1.0 / k_i - 1.0 / K)
    residual2 = (y[rows] - oob_mean) ** 2
    if variances is None:
        base = np.ones_like(residual2)
    else:
        base = np.where(mask, variances[:, rows], 0.0).sum(axis=0) / k_i
    weight = sample_weight[rows]
    scales = np.array(
        [
            _fit_scales(residual2[:, j], epistemic[:, j], base[:, j], weight, epistemic_bounds)
            for j in range(y.shape[1])
        ]
    )
    return scales[:, 0], scales[:, 1]
