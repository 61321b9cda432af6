"""The members' loss: each member's weighted loss over its bootstrap resample, as a skorch criterion.

Bootstrap resamples are per-row, per-member weights, so one forward pass over a batch gives every
member's loss at once; the loss returns weighted sums and weight sums rather than means, so that
batches (and out-of-bag validation) pool exactly.
"""

import torch
from torch import nn


class MemberLoss(nn.Module):
    """Each member's weighted loss: squared error, or Gaussian negative log-likelihood.

    ``forward(y_pred, y_true, weight)`` takes member outputs ``(n, K, o)`` (means, then
    variances for heteroscedastic members), targets ``(n, t)`` and per-row, per-member weights
    ``(n, K)``, and returns the weighted loss sums and the weight sums, each ``(K,)``: a member's
    loss is their ratio, and the sums let batches be pooled exactly.

    Parameters
    ----------
    heteroscedastic : bool, default=False
    """

    def __init__(self, heteroscedastic=False):
        super().__init__()
        self.heteroscedastic = heteroscedastic

    def forward(self, y_pred, y_true, weight):
        n_targets = y_true.shape[-1]
        residual = y_true.unsqueeze(1) - y_pred[..., :n_targets]
        if self.heteroscedastic:
            variance = y_pred[..., n_targets:]
            per_row = 0.5 * (torch.log(variance) + residual**2 / variance)
        else:
            per_row = residual**2
        per_row = per_row.mean(dim=-1)
        # Sums over rows, member by member, in an order that does not depend on how many members
        # share the call (torch's dim-0 sum of an (n, K) tensor vectorises across K, so float32
        # rounding would change with the grouping of members).
        return (torch.einsum("nk,nk->k", weight, per_row),
                torch.einsum("nk->k", weight))


def _ratio(totals, weights):
    # A member whose rows in this batch all have weight zero contributes nothing, not 0/0.
    return totals / weights.clamp_min(torch.finfo(weights.dtype).tiny)
