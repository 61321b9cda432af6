"""Frozen priors, and the modules that add them to the trained members.

Member ``k`` of a randomized prior ensemble predicts ``f_k(x) + prior_scale * p_k(x)``
(Osband, Aslanides & Cassirer, NeurIPS 2018): ``f_k`` is trained, ``p_k`` is frozen.

* A prior is either an ensemble of per-member networks (see :mod:`._networks`) or a
  :class:`FixedFunctionPrior` shared by every member, such as ``sin(3x)``. Both answer
  ``member(k)``: the shared prior answers with itself, so no caller has to tell them apart.
* :class:`RandomizedPriorEnsemble` is the whole ensemble, trained as one module;
  :class:`MemberWithPrior` is one member, stand-alone and in the data's original units.
* "No prior" (``prior_scale=0``) is a ``prior`` of None, decided once when the ensemble is built.

Ensembles map ``x`` of shape ``(n, d)`` to ``(n, K, o)`` (rows first, so that skorch can batch
them): ``o`` is the number of targets, or twice that for heteroscedastic members (means, then
variances).
"""

import numpy as np
import torch
from torch import nn

# Smallest variance (in normalised target units) a heteroscedastic member may predict: keeps the
# Gaussian negative log-likelihood finite when a member fits a training point exactly.
MIN_VARIANCE = 1e-6


class FixedFunctionPrior(nn.Module):
    """A hand-picked prior shared by all members, for instance ``lambda x: torch.sin(3 * x)``.

    Parameters
    ----------
    function : callable or nn.Module
        Maps a float tensor of shape ``(n, d)`` to ``(n, n_targets)`` (or ``(n,)`` for one target).
    """

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        out = self.function(x)
        if isinstance(out, torch.Tensor) and out.is_complex():  # .to() would drop the imaginary
            raise ValueError(f"The prior must return real numbers; it returned {out.dtype}.")
        if isinstance(out, torch.Tensor):  # a float64 (or int) function joins in x's precision
            out = out.to(dtype=x.dtype, device=x.device)
            return out.unsqueeze(-1) if out.dim() == 1 else out
        return out  # not a tensor: _check_prior_output says so

    def member(self, k):
        """Every member shares this prior."""
        return self

    @classmethod
    def concatenate(cls, parts):
        return parts[0]


def _add_prior(out, prior, prior_scale):
    """Add ``prior_scale * prior`` to the mean outputs (the first ``prior.shape[-1]`` columns)."""
    n_targets = prior.shape[-1]
    if out.shape[-1] == n_targets:
        return out + prior_scale * prior
    return torch.cat([out[..., :n_targets] + prior_scale * prior, out[..., n_targets:]], dim=-1)


def _variance_head(out, n_targets):
    """Heteroscedastic members: the last ``n_targets`` outputs become positive variances."""
    if out.shape[-1] == n_targets:
        return out
    mean, raw = out[..., :n_targets], out[..., n_targets:]
    return torch.cat([mean, nn.functional.softplus(raw) + MIN_VARIANCE], dim=-1)


class _FrozenPriorMixin:
    """Keeps the prior frozen: no gradient, no optimizer slot, always in eval mode."""

    def _freeze(self):
        if self.prior is not None:
            self.prior.requires_grad_(False)
            self.prior.eval()

    def train(self, mode=True):
        if mode == self.training:
            return self  # skorch sets the mode at every batch: skip the walk over the submodules
        super().train(mode)
        if self.prior is not None:
            self.prior.eval()
        return self

    def _prior_output(self, x):
        with torch.no_grad():
            return self.prior(x)


class RandomizedPriorEnsemble(_FrozenPriorMixin, nn.Module):
    """The whole ensemble: trainable members plus ``prior_scale`` times frozen priors.

    Parameters
    ----------
    trainable : nn.Module
        An ensemble mapping ``(n, d)`` to ``(K, n, o)``.
    prior : nn.Module or None
        An ensemble of per-member priors, ``(n, d)`` to ``(K, n, n_targets)``, a
        :class:`FixedFunctionPrior`, ``(n, d)`` to ``(n, n_targets)``, or None (no prior). Frozen
        here.
    prior_scale : float
        Beta in ``f_k(x) + beta * p_k(x)``.
    n_targets : int
    """

    def __init__(self, trainable, prior, prior_scale, n_targets):
        super().__init__()
        self.trainable = trainable
        self.prior = prior
        self.prior_scale = float(prior_scale)
        self.n_targets = n_targets
        self._freeze()

    @property
    def n_members(self):
        return self.trainable.n_members

    def scaled_prior_outputs(self, x):
        """``prior_scale * p_k(x)``, shape ``(K, n, n_targets)``; zeros without a prior."""
        n_members = self.n_members
        if self.prior is None:
            return x.new_zeros(n_members, x.shape[0], self.n_targets)
        prior = self.prior_scale * self._prior_output(x)
        return prior.expand(n_members, *prior.shape[-2:])

    def prior_outputs(self, x):
        """Unscaled prior outputs, ``(K, n, t)`` (per member) or ``(n, t)`` (shared); None
        without a prior. They never change, so training may compute them once."""
        return None if self.prior is None else self._prior_output(x)

    def forward(self, x, prior=None, weight=None, oob_weight=None):
        """Return ``(n, K, o)``.

        ``prior`` may carry precomputed prior outputs for these rows, cached rows first as
        ``(n, K, t)`` or ``(n, t)``; ``weight`` and ``oob_weight`` are the bootstrap loss weights,
        read by the loss and ignored here.
        """
        out = self.trainable(x)
        if self.prior is not None:
            if prior is None:
                prior = self._prior_output(x)
            elif prior.dim() == 3:
                prior = prior.transpose(0, 1)
            out = _add_prior(out, prior, self.prior_scale)
        return _variance_head(out, self.n_targets).transpose(0, 1)

    def member(self, k, standardizer=None, squeeze=False):
        """Member ``k`` alone, ``f_k + prior_scale * p_k``, as a :class:`MemberWithPrior`.

        ``standardizer`` (an ``_scaling.Standardizer``) makes it take inputs and return
        predictions in the data's original units.
        """
        return MemberWithPrior(
            self.trainable.member(k), None if self.prior is None else self.prior.member(k),
            self.prior_scale, self.n_targets, standardizer, squeeze,
        )

    @classmethod
    def concatenate(cls, parts):
        """One ensemble from groups of members trained apart, in order."""
        first = parts[0]
        prior = None if first.prior is None else type(first.prior).concatenate(
            [p.prior for p in parts])
        trainable = type(first.trainable).concatenate([p.trainable for p in parts])
        return cls(trainable, prior, first.prior_scale, first.n_targets)


def _unheld_scale(standardizer, dtype):
    """Why a member in the data's units cannot compute in ``dtype``, or None: a scale of the
    inputs or targets below its smallest normal number (rounded, or 0: a silent wrong prediction)
    or an offset or scale beyond its largest. The ensemble works in standardised units, so its
    own predictions are not affected."""
    info = torch.finfo(dtype)
    for name in ("x_scale", "y_scale", "x_offset", "y_offset"):
        value = np.abs(np.asarray(getattr(standardizer, name), dtype=np.float64))
        bad = (value > info.max) | ((value < info.tiny) & name.endswith("scale"))
        if bad.any():
            what = {"x": "inputs'", "y": "target's"}[name[0]]
            return (
                f"This member predicts in the data's units, in {dtype}, which cannot hold the "
                f"{what} {name[2:]} ({float(value[bad][0]):.3g}; {dtype} holds about "
                f"{info.tiny:.2g} to {info.max:.2g}). The ensemble's predict works in "
                "standardised units and is not affected; to use a member alone, refit with "
                "dtype='float64'."
            )
    return None


class MemberWithPrior(_FrozenPriorMixin, nn.Module):
    """One member, ``f_k(x) + prior_scale * p_k(x)``, optionally in the data's original units.

    The output has ``n_targets`` columns (the mean), followed for heteroscedastic members by
    ``n_targets`` columns of predicted noise variance; a single-target mean-only member returns
    shape ``(n,)`` when ``squeeze`` (the regressor fitted on a 1-D ``y``).

    Parameters
    ----------
    net : nn.Module
        The trained network ``f_k``.
    prior : nn.Module or None
        The frozen prior ``p_k``.
    prior_scale : float
    n_targets : int
    standardizer : Standardizer, optional
        Inputs are standardised and outputs returned to the target's units with it.
    squeeze : bool, default=False
    """

    def __init__(self, net, prior, prior_scale, n_targets, standardizer=None, squeeze=False):
        super().__init__()
        self.net = net
        self.prior = prior
        self.prior_scale = float(prior_scale)
        self.n_targets = n_targets
        self.squeeze = squeeze
        dtype = next(net.parameters()).dtype
        for name in ("x_offset", "x_scale", "y_offset", "y_scale"):
            value = None if standardizer is None else getattr(standardizer, name)
            self.register_buffer(name, None if value is None else torch.as_tensor(value, dtype=dtype))
        self._unheld = None if standardizer is None else _unheld_scale(standardizer, dtype)
        self._freeze()

    def forward(self, x):
        dtype = next(self.net.parameters()).dtype
        unheld = getattr(self, "_unheld", None)  # absent from members pickled before it
        if unheld is not None:
            raise ValueError(unheld)
        x = x.to(dtype)  # skorch passes float64 arrays through unchanged
        if self.x_offset is not None:
            x = (x - self.x_offset) / self.x_scale
        out = self.net(x)
        if self.prior is not None:
            out = _add_prior(out, self._prior_output(x), self.prior_scale)
        out = _variance_head(out, self.n_targets)
        mean = out[..., : self.n_targets]
        if self.y_offset is not None:
            mean = mean * self.y_scale + self.y_offset
        if out.shape[-1] == self.n_targets:
            return mean[..., 0] if self.squeeze and self.n_targets == 1 else mean
        variance = out[..., self.n_targets :]
        if self.y_scale is not None:
            variance = variance * self.y_scale**2
        return torch.cat([mean, variance], dim=-1)
