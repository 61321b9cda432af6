"""Evaluating a fitted ensemble in bounded memory.

Rows are standardised, pushed through every member and summarised one batch at a time, and the
summaries written into preallocated outputs, so that predicting a million rows costs the outputs
plus one batch, never ``K`` copies of the rows. Non-finite outputs are caught here and blamed on
the prior or on the members, whichever produced them.
"""

from dataclasses import dataclass

import numpy as np
import torch

from .._devices import autocast_off

# Rows per batch keep members x rows x widest layer near this many floats (16 MB in float32).
PREDICT_ELEMENTS = 4_000_000


def predict_rows(n_members, widest_layer):
    """Rows per prediction batch for an ensemble of ``n_members`` with this widest layer."""
    return max(256, PREDICT_ELEMENTS // (n_members * widest_layer))


@dataclass(frozen=True)
class FittedEnsemble:
    """A trained ensemble module with what is needed to evaluate it on raw inputs.

    Attributes
    ----------
    module : RandomizedPriorEnsemble
    standardizer : Standardizer
    dtype : numpy dtype of the networks
    device : torch.device
    rows : int
        Rows per batch.
    """

    module: object
    standardizer: object
    dtype: object
    device: object
    rows: int

    @classmethod
    def around(cls, net, standardizer, rows):
        """The fitted ensemble of a trained :class:`EnsembleNet`, on the net's device."""
        module = net.module_
        dtype = next(module.trainable.parameters()).dtype
        return cls(module, standardizer, torch.empty(0, dtype=dtype).numpy().dtype,
                   torch.device(net.device), rows)

    @property
    def n_targets(self):
        return self.module.n_targets

    def batches(self, X, rows=None):
        """Yield ``(slice, means, variances)`` for consecutive batches of raw ``X``.

        ``means`` and ``variances`` (None for squared-error members) are float64 arrays of shape
        ``(K, batch_rows, n_targets)`` in standardised target units.
        """
        self.module.eval()
        t = self.n_targets
        for batch, x in self._inputs(X, rows):
            with torch.no_grad(), autocast_off(self.device):
                out = self.module(x).transpose(0, 1)
                if not torch.isfinite(out).all():
                    self._blame(x, out, batch.start)
            out = out.to("cpu", torch.float64).numpy()
            yield batch, out[..., :t], (out[..., t:] if out.shape[-1] > t else None)

    def _inputs(self, X, rows=None):
        """Consecutive batches of raw ``X``, standardised, as tensors on the device."""
        rows = rows or self.rows
        for start in range(0, len(X), rows):
            batch = slice(start, min(start + rows, len(X)))
            yield batch, torch.from_numpy(
                self.standardizer.transform_X(X, self.dtype, batch)).to(self.device)

    def _blame(self, x, out, start):
        bad_row = start + int(torch.nonzero(~torch.isfinite(out))[0, 1])
        prior = self.module.prior_outputs(x)
        if prior is not None and not torch.isfinite(prior).all():
            raise ValueError(
                f"The prior returned NaN or infinity for row {bad_row} of X; a prior must give "
                "finite outputs for every input."
            )
        bad = torch.nonzero(~torch.isfinite(out))[:, 0].unique().tolist()
        raise ValueError(
            f"Members {bad[:10]} returned NaN or infinity for row {bad_row} of X. The inputs may "
            "be too far from the training data for the networks' precision; try "
            "dtype='float64'."
        )

    def members(self, X):
        """Every member's mean in standardised units, shape ``(K, n, t)``."""
        out = np.empty((self.module.n_members, len(X), self.n_targets))
        for batch, means, _ in self.batches(X):
            out[:, batch] = means
        return out

    def scaled_priors(self, X):
        """``prior_scale * p_k(X)`` in standardised target units, shape ``(K, n, t)``."""
        out = np.empty((self.module.n_members, len(X), self.n_targets))
        for batch, x in self._inputs(X):
            with torch.no_grad(), autocast_off(self.device):
                prior = self.module.scaled_prior_outputs(x)
            out[:, batch] = prior.to("cpu", torch.float64).numpy()
        return out
