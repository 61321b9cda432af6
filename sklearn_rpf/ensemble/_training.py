"""The skorch side of ensemble training: one net trains every member at once.

The whole ensemble is a single skorch :class:`~skorch.NeuralNet` whose module returns the
predictions of all ``K`` members, shape ``(n, K, o)``. Bootstrap resampling is expressed as
per-member loss weights (how many times each row was drawn for member ``k``), so the data is held
once, not ``K`` times, and skorch's callbacks, history, device handling and early stopping apply to
the ensemble as a whole. Out-of-bag rows (weight zero for member ``k``) give each member a free
validation set: with ``train_split=out_of_bag_split`` skorch's ``valid_loss`` is the out-of-bag
loss.
"""

import contextlib

import numpy as np
import torch
from skorch import NeuralNet
from skorch.dataset import Dataset


class TensorBatchIterator:
    """Mini-batches sliced straight from tensors.

    skorch's default ``DataLoader`` fetches and collates one row at a time, which dominates the run
    time of small networks. This iterator slices whole batches instead and shuffles with its own
    ``torch.Generator``, never the global one.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset
        Holds ``X`` (a tensor or a dict of tensors, rows first) and ``y``.
    batch_size : int
    shuffle : bool, default=False
    generator : torch.Generator, optional
        Source of the shuffling order; by default a new generator seeded from OS entropy.
    """

    def __init__(self, dataset, batch_size, shuffle=False, generator=None):
        self.X = dataset.X
        self.y = dataset.y
        self.n = len(dataset)
        self.batch_size = self.n if batch_size in (None, -1) else int(batch_size)
        self.shuffle = shuffle
        if generator is None and shuffle:  # never fall back on torch's global generator
            generator = torch.Generator().manual_seed(seed_from(None))
        self.generator = generator

    def __len__(self):
        return -(-self.n // self.batch_size)

    @staticmethod
    def _take(data, index):
        if data is None:
            return None
        if isinstance(data, dict):
            return {key: value[index] for key, value in data.items()}
        return data[index]

    def __iter__(self):
        if self.batch_size >= self.n and not self.shuffle:
            yield self.X, self.y  # full batch: no copy at all
            return
        if self.shuffle:
            order = torch.randperm(self.n, generator=self.generator)
        for start in range(0, self.n, self.batch_size):
            index = (
                order[start : start + self.batch_size]
                if self.shuffle
                else slice(start, start + self.batch_size)
            )
            if self.shuffle and isinstance(self.X, dict):
                index = index.to(next(iter(self.X.values())).device)
            yield self._take(self.X, index), self._take(self.y, index)


def out_of_bag_split(dataset, y=None):
    """skorch ``train_split`` whose validation set is every row, weighted by ``oob_weight``.

    The loss reads ``weight`` while training and ``oob_weight`` while validating, so member
    ``k``'s validation loss covers exactly the rows its bootstrap resample left out.
    """
    return dataset, dataset


def member_losses(y_pred, y_true, weight, heteroscedastic):
    """Weighted loss of every member, shape ``(K,)``.

    Parameters
    ----------
    y_pred : tensor of shape (n, K, o)
        Member outputs: means, then (heteroscedastic) variances.
    y_true : tensor of shape (n, t)
    weight : tensor of shape (n, K)
        Bootstrap counts times sample weights; zero rows do not count.
    heteroscedastic : bool
        Gaussian negative log-likelihood (up to a constant) instead of squared error.
    """
    n_targets = y_true.shape[-1]
    residual = y_true.unsqueeze(1) - y_pred[..., :n_targets]
    if heteroscedastic:
        variance = y_pred[..., n_targets:]
        per_row = 0.5 * (torch.log(variance) + residual**2 / variance)
    else:
        per_row = residual**2
    per_row = per_row.mean(dim=-1)
    total = weight.sum(dim=0)
    # A member whose validation set is empty contributes nothing rather than 0/0.
    return (weight * per_row).sum(dim=0) / total.clamp_min(torch.finfo(total.dtype).tiny)


class EnsembleNet(NeuralNet):
    """A skorch net that trains all members of a :class:`RandomizedPriorEnsemble` together.

    Its input is a dict with keys ``x`` (features), ``weight`` (bootstrap counts times sample
    weights, shape ``(n, K)``), and optionally ``oob_weight`` (out-of-bag weights, for validation)
    and ``prior`` (cached prior outputs). The loss is the sum over members of each member's
    weighted mean loss: summing keeps every member's gradient exactly what it would be if it were
    trained alone.

    Parameters
    ----------
    heteroscedastic : bool, default=False
        Members predict a mean and a variance and train on the Gaussian negative log-likelihood.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(self, *args, heteroscedastic=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.heteroscedastic = heteroscedastic

    def get_loss(self, y_pred, y_true, X=None, training=False):
        weight = X["weight"] if training else X["oob_weight"]
        return member_losses(y_pred, y_true, weight, self.heteroscedastic).sum()

    def get_all_learnable_params(self):
        # Frozen priors carry requires_grad=False: keep them out of the optimizer altogether.
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param


def bootstrap_counts(n_draws, sample_weight, order, n_members, rng):
    """How many times each row is drawn in each member's bootstrap resample.

    Rows are drawn with probability proportional to ``sample_weight`` by inverting the cumulative
    weight, after putting rows in a canonical order (``order``, e.g. sorted by content). With the
    same generator, a row of integer weight ``w`` is then drawn exactly as often as ``w`` repeated
    copies of it would be, whatever the row order.

    Parameters
    ----------
    n_draws : int
        Size of each resample.
    sample_weight : ndarray of shape (n,)
    order : ndarray of shape (n,)
        Permutation putting rows in canonical order.
    n_members : int
    rng : numpy.random.Generator

    Returns
    -------
    counts : ndarray of shape (n, n_members), float
    """
    n = sample_weight.shape[0]
    cumulative = np.cumsum(sample_weight[order])
    counts = np.empty((n, n_members))
    for k in range(n_members):
        u = rng.random(n_draws) * cumulative[-1]
        drawn = np.searchsorted(cumulative, u, side="right").clip(max=n - 1)
        counts[order, k] = np.bincount(drawn, minlength=n)
    return counts


def pool_duplicates(in_bag, rows, order):
    """Treat identical rows as one: a row is in bag for member ``k`` if any copy of it is.

    A copy of a training row is not new data, so it must not count as out of bag; pooling also
    keeps repeated rows and integer sample weights exactly equivalent.

    Parameters
    ----------
    in_bag : ndarray of shape (n, K), bool
    rows : ndarray of shape (n, m)
        Row contents (features and targets).
    order : ndarray of shape (n,)
        Permutation putting identical rows next to each other.
    """
    sorted_rows = rows[order]
    starts = np.r_[True, np.any(sorted_rows[1:] != sorted_rows[:-1], axis=1)]
    group = np.empty(len(order), dtype=np.intp)
    group[order] = np.cumsum(starts) - 1
    pooled = np.zeros((starts.sum(), in_bag.shape[1]), dtype=bool)
    np.logical_or.at(pooled, group, in_bag)
    return pooled[group]


def to_dataset(x, y, weight, oob_weight=None, prior=None):
    """Pack training tensors into the dict dataset :class:`EnsembleNet` expects."""
    X = {"x": x, "weight": weight}
    if oob_weight is not None:
        X["oob_weight"] = oob_weight
    if prior is not None:
        X["prior"] = prior
    return Dataset(X, y)


def seed_from(random_state):
    """One integer seed from ``random_state``; None draws fresh OS entropy (no global state)."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    return int(random_state)


@contextlib.contextmanager
def forked_rng(device, seed):
    """Seed torch's global generator(s) for this block only, restoring the caller's state after.

    Module constructors (``nn.Linear``'s init) and dropout draw from the global generator; forking
    it keeps fits reproducible without reseeding or consuming the caller's stream. Only the CPU
    generator and the one of the CUDA device in use are touched.
    """
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else []):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield
