"""Prior shapes other than the default MLP, for the prior-shape study of issue 10.

``--rpf-params '{"prior": "fourier:1.0"}'`` in ``benchmarks.shift`` and ``benchmarks.uci`` names one
of these; :func:`resolve` turns the name into the factory
that ``RandomizedPriorRegressor(prior=...)`` instantiates once per member (each member from its own
random stream). Every shape has about unit output variance on standardised inputs, like the
default prior, so ``prior_scale`` keeps its meaning across shapes.

``"evidence:<factor>"`` is built at fit time instead (``benchmarks._common.make_rpf`` wraps it in
:class:`EvidencePriorRegressor`): the length scales come from a GP fitted to the training rows.
"""

import functools
import math
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from torch import nn


class RandomFourierPrior(nn.Module):
    """A draw from a Gaussian process with an RBF kernel of ``length_scale``, via random features.

    ``p(x) = sum_m a_m cos(w_m . x + b_m)`` with ``w_m ~ N(0, I / length_scale**2)``,
    ``b_m ~ U(0, 2 pi)`` and ``a_m ~ N(0, 2 / M)``: stationary, unit variance everywhere, and as
    rough as the length scale (a number, or one per feature) says (Rahimi & Recht, 2007). Unlike a ReLU MLP it does not grow away
    from the data, and its smoothness is one number.
    """

    def __init__(self, n_features, n_outputs, length_scale=1.0, n_components=256):
        super().__init__()
        # One length scale, or one per feature (an ARD kernel's).
        scale = torch.as_tensor(length_scale, dtype=torch.float32).reshape(-1, 1)
        self.register_buffer("frequencies", torch.randn(n_features, n_components) / scale)
        self.register_buffer("phases", torch.rand(n_components) * (2 * math.pi))
        self.register_buffer("amplitudes",
                             torch.randn(n_components, n_outputs) * math.sqrt(2.0 / n_components))

    def forward(self, x):
        return torch.cos(x @ self.frequencies + self.phases) @ self.amplitudes


class EvidencePriorRegressor(RegressorMixin, BaseEstimator):
    """A ``RandomizedPriorRegressor`` whose prior is a draw from a GP fitted to the training data.

    Fit first finds an ARD RBF kernel (one length scale per feature, an amplitude, a noise level)
    by maximising the marginal likelihood of a Gaussian process on at most ``max_rows`` training
    rows, then trains the ensemble with random-Fourier-feature priors of those length scales and
    ``prior_scale = scale * amplitude``. An irrelevant feature gets a long length scale, so the
    prior does not vary along it: the spread grows away from the data only along the features
    the target depends on. Inputs should be standardised (the benchmarks' pipeline does it).
    """

    def __init__(self, scale=1.0, max_rows=500, params=None, random_state=None):
        self.scale = scale
        self.max_rows = max_rows
        self.params = params
        self.random_state = random_state

    def fit(self, X, y):
        from sklearn_rpf import RandomizedPriorRegressor

        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        length_scale, amplitude = fit_ard_kernel(X, y, self.max_rows, self.random_state)
        prior = functools.partial(RandomFourierPrior, length_scale=length_scale.tolist())
        regressor = RandomizedPriorRegressor(
            **{**(self.params or {}), "prior": prior,
               "prior_scale": self.scale * amplitude, "random_state": self.random_state})
        regressor.fit(X, y)  # a failed fit leaves no half-fitted attributes behind
        self.length_scale_, self.amplitude_, self.regressor_ = length_scale, amplitude, regressor
        return self

    def predict(self, X, **kwargs):
        return self.regressor_.predict(X, **kwargs)


def fit_ard_kernel(X, y, max_rows, seed):
    """Per-feature length scales and the amplitude (in target standard deviations) of an ARD
    RBF kernel plus white noise, by marginal likelihood on at most ``max_rows`` rows."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    from ._common import gp_rows

    rows = gp_rows(len(X), max_rows, seed)
    kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * RBF(np.ones(X.shape[1]), (1e-2, 1e3))
              + WhiteKernel(0.1, (1e-6, 1e1)))
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # length scales at their bound: a flat feature
        gp.fit(X[rows], y[rows])
    return (np.atleast_1d(gp.kernel_.k1.k2.length_scale),
            float(np.sqrt(gp.kernel_.k1.k1.constant_value)))


def parse(spec):
    """``"<shape>:<number>"`` -> ``(shape, number)``, with a clear error for anything else."""
    name, _, value = spec.partition(":")
    if name not in ("fourier", "evidence"):
        raise ValueError(f"Unknown prior shape {spec!r}; expected 'fourier:<length scale>' or "
                         "'evidence:<factor of the fitted amplitude>', e.g. 'fourier:1.0'.")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"Prior shape {spec!r}: the number after '{name}:' must be positive and "
                         f"finite, e.g. '{name}:1.0'; got {value!r}.")
    return name, number


def resolve(spec):
    """``"fourier:<length scale>"`` -> a factory; anything else but a string is returned
    unchanged (``"evidence:..."`` is built at fit time, by ``make_rpf``)."""
    if not isinstance(spec, str):
        return spec
    name, number = parse(spec)
    if name != "fourier":
        raise ValueError(f"Prior shape {spec!r} is built at fit time: use make_rpf.")
    return functools.partial(RandomFourierPrior, length_scale=number)
