"""Prior shapes other than the default MLP, for the prior-shape study of issue 10.

``--rpf-params '{"prior": "fourier:1.0"}'`` in ``benchmarks.shift``, ``benchmarks.uci`` and
``benchmarks.tune_defaults`` names one of these; :func:`resolve` turns the name into the factory
that ``RandomizedPriorRegressor(prior=...)`` instantiates once per member (each member from its own
random stream). Every shape has about unit output variance on standardised inputs, like the
default prior, so ``prior_scale`` keeps its meaning across shapes.
"""

import functools
import math

import torch
from torch import nn


class RandomFourierPrior(nn.Module):
    """A draw from a Gaussian process with an RBF kernel of ``length_scale``, via random features.

    ``p(x) = sum_m a_m cos(w_m . x + b_m)`` with ``w_m ~ N(0, I / length_scale**2)``,
    ``b_m ~ U(0, 2 pi)`` and ``a_m ~ N(0, 2 / M)``: stationary, unit variance everywhere, and as
    rough as the length scale says (Rahimi & Recht, 2007). Unlike a ReLU MLP it does not grow away
    from the data, and its smoothness is one number.
    """

    def __init__(self, n_features, n_outputs, length_scale=1.0, n_components=256):
        super().__init__()
        self.register_buffer("frequencies", torch.randn(n_features, n_components) / length_scale)
        self.register_buffer("phases", torch.rand(n_components) * (2 * math.pi))
        self.register_buffer("amplitudes",
                             torch.randn(n_components, n_outputs) * math.sqrt(2.0 / n_components))

    def forward(self, x):
        return torch.cos(x @ self.frequencies + self.phases) @ self.amplitudes


def resolve(spec):
    """``"fourier:<length scale>"`` -> a factory; anything else is returned unchanged."""
    if not isinstance(spec, str):
        return spec
    name, _, value = spec.partition(":")
    if name == "fourier":
        return functools.partial(RandomFourierPrior, length_scale=float(value or 1.0))
    raise ValueError(f"Unknown prior shape {spec!r}; expected 'fourier:<length scale>'.")
