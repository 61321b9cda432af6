"""Training on data bigger than memory: the online bootstrap and a bounded calibration sample.

``partial_fit`` sees the data one chunk at a time, so the bootstrap cannot draw rows from the
whole data set. The online (Poisson) bootstrap of Oza & Russell (2001) replaces it: member ``k``
weights row ``i`` by a Poisson(1) count, which is what the number of draws of one row becomes in a
large bootstrap resample. Here the count is a function of ``(random_state, k)`` and the row's
content (a keyed hash turned into a Poisson variate), so it does not depend on how the data was
cut into chunks, nor on their order, and a row seen again in a later pass gets the same count:
a row with count 0 is never trained on by member ``k``, it is out of bag for good (unless the
``fit`` that the stream goes on from drew it for ``k``: :class:`FitBags`).

The noise and the conformal intervals need out-of-bag residuals of the current model. Residuals
kept from earlier chunks would be stale (the members have trained since), so instead a fixed-size
uniform sample of the rows seen so far is kept (a bottom-k sample: the rows with the smallest
keyed hash, again independent of the chunking) and re-scored by the current members after every
call. Memory stays bounded whatever the length of the stream.
"""

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

from ._bootstrap import Bag, hash_key, hash_uniform, pooled_in_bag, row_hashes
from ._conformal import MAX_ROWS
from ._inference import FittedEnsemble
from ._scaling import Standardizer
from ._training import TrainingData, fit_net, make_net, net_batch_size, training_dataset

# Entries of the training log kept by a stream (the last calls'): memory stays flat however long
# the stream runs.
HISTORY_KEPT = 1000
# Rows kept to calibrate the noise and the conformal intervals after each partial_fit call: as
# many as fit keeps for the conformal intervals.
CALIBRATION_ROWS = MAX_ROWS

# P(Poisson(1) <= c) for c = 0, 1, ...: inverse-CDF sampling of the counts from uniform hashes.
_POISSON_CDF = np.cumsum([np.exp(-1.0) / np.prod(np.arange(1, c + 1)) for c in range(20)])


def poisson_counts(hashes, seed, n_members):
    """Member ``k``'s Poisson(1) count of each row, from the row hashes: shape ``(n, K)``, uint8."""
    counts = np.empty((len(hashes), n_members), dtype=np.uint8)
    for k in range(n_members):
        counts[:, k] = np.searchsorted(_POISSON_CDF,
                                       hash_uniform(hashes, hash_key(seed, "bootstrap", k)),
                                       side="right")
    return counts


def _same_parameter(before, value):
    """Whether two values of a parameter mean the same: ``[8]``, ``(8,)``, ``np.array([8])`` and
    ``8`` alike (as ``hidden_layer_sizes`` reads them), but not ``(8, 8)``; a device and its
    name alike."""
    before, value = _comparable(before), _comparable(value)
    if isinstance(before, np.ndarray) or isinstance(value, np.ndarray):
        return np.array_equal(np.atleast_1d(before), np.atleast_1d(value))
    return bool(np.all(before == value))


def _comparable(value):
    if isinstance(value, list | tuple | np.ndarray):
        return np.asarray(value)
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, str):
        try:
            return str(torch.device(value))
        except (RuntimeError, TypeError):  # not a device name: the text itself
            return value
    return value


@dataclass
class CalibrationSample:
    """A bottom-k sample of the distinct rows seen so far: uniform, and the same however they
    were chunked or repeated. Rows are kept with their hash (which gives their Poisson counts
    back)."""

    seed: int
    capacity: int = CALIBRATION_ROWS
    X: np.ndarray = None
    y: np.ndarray = None
    weight: np.ndarray = None
    hashes: np.ndarray = field(default=None)
    ranks: np.ndarray = field(default=None)

    def add(self, X, y, weight, hashes):
        """Merge a chunk; keep the ``capacity`` rows of smallest rank."""
        ranks = hash_uniform(hashes, hash_key(self.seed, "draws"))
        if self.X is None:  # validated float64 input can be the caller's own array: keep a copy
            X, y, weight = np.array(X), np.array(y), np.array(weight)
        else:
            X, y = np.concatenate([self.X, X]), np.concatenate([self.y, y])
            weight = np.concatenate([self.weight, weight])
            hashes, ranks = np.concatenate([self.hashes, hashes]), np.concatenate([self.ranks, ranks])
        # A row seen again (a later pass, a copy in the chunk) is still one row of the sample.
        _, first = np.unique(hashes, return_index=True)
        if len(first) < len(hashes):
            X, y, weight, hashes, ranks = X[first], y[first], weight[first], hashes[first], ranks[first]
        if len(ranks) > self.capacity:
            keep = np.argpartition(ranks, self.capacity - 1)[: self.capacity]
            X, y, weight, hashes, ranks = X[keep], y[keep], weight[keep], hashes[keep], ranks[keep]
        self.X, self.y, self.weight, self.hashes, self.ranks = X, y, weight, hashes, ranks


def chunk_weights(X, y, sample_weight, seed, n_members, bootstrap=True):
    """Poisson counts of a chunk's rows and its per-member loss weights (counts x weights);
    without bootstrap, every row counts once for every member.

    Returns
    -------
    hashes : ndarray of shape (n,), uint64
    counts : ndarray of shape (n, K), uint8
    weight : ndarray of shape (n, K), float64
    """
    hashes = row_hashes(X, y)
    counts = poisson_counts(hashes, seed, n_members) if bootstrap else \
        np.ones((len(hashes), n_members), dtype=np.uint8)
    return hashes, counts, counts * sample_weight[:, None]


@dataclass(frozen=True)
class FitBags:
    """Which rows the members of a ``fit`` trained on, by content (identical rows pooled, as
    fit pools them out of bag), for a stream that goes on from that fit: a row fit's member
    ``k`` drew is not out of bag for ``k`` whatever its Poisson count, or the stream would
    calibrate the noise and the intervals on training residuals (too narrow: coverage 0.72 to
    0.80 instead of 0.90 in a review's reproducer, streaming fit's own rows again)."""

    hashes: np.ndarray  # (u,) uint64, sorted, unique
    in_bag: np.ndarray  # (u, ceil(K / 8)) uint8, packed bits: member k drew the row
    n_members: int

    @classmethod
    def from_fit(cls, hashes, counts):
        order = np.argsort(hashes, kind="stable")
        pooled = pooled_in_bag(counts > 0, hashes, order)
        unique, first = np.unique(hashes, return_index=True)
        return cls(unique, np.packbits(pooled[first], axis=1), counts.shape[1])

    def trained(self, hashes):
        """``(n, K)`` bool: whether fit's member ``k`` trained on each row (or a copy of it)."""
        position = np.searchsorted(self.hashes, hashes).clip(max=len(self.hashes) - 1)
        bits = np.unpackbits(self.in_bag[position], axis=1, count=self.n_members).astype(bool)
        return bits & (self.hashes[position] == hashes)[:, None]


# Parameters that may change between partial_fit calls: they do not touch the model.
MUTABLE_PARAMETERS = {"verbose", "n_jobs"}


class Stream:
    """What ``partial_fit`` keeps between calls: the net (members and optimizer state), the
    standardisation fixed on the first chunk, the calibration sample and the parameters; after
    ``fit``, which rows fit's members trained on (``fit_bags``)."""

    # The first call's training loss, what a diverging stream is measured against (a class
    # default: streams pickled before it existed read None and set it on their next call).
    first_loss = None
    # After fit: the rows its members trained on (FitBags); None for a stream from scratch.
    fit_bags = None

    def __init__(self, params, standardizer, seed, net, config, y_ndim, epochs_before=0):
        self.params = params
        self.standardizer = standardizer
        self.seed = seed
        self.net = net
        self.config = config
        self.y_ndim = y_ndim
        self.epochs_before = epochs_before
        self.dtype = next(net.module_.trainable.parameters()).detach().cpu().numpy().dtype
        self.weight_unit = None  # the first chunk's mean positive weight
        self.sample = CalibrationSample(seed)
        self.n_calls = 0
        self.n_samples_seen = 0

    @classmethod
    def start(cls, spec, config, params, seed, X, y, sample_weight, y_ndim):
        """Build the members and fix the standardisation on the first chunk."""
        standardizer = Standardizer.fit(X, y, sample_weight, params["normalize_X"],
                                        params["normalize_y"])
        x = standardizer.transform_X(X, torch.empty(0, dtype=spec.dtype).numpy().dtype)
        module = spec.build(range(params["n_estimators"]), seed, torch.as_tensor(x[:2]))
        net = make_net(module.to(config.device), config, len(X), seed, max_epochs=1,
                       shuffle=True)
        return cls(params, standardizer, seed, net, config, y_ndim)

    @classmethod
    def from_fitted(cls, net, standardizer, params, seed, config, y_ndim, epochs_before,
                    fit_bags=None):
        """Go on training the members a fit trained, with fit's standardisation. The optimizer
        and the batch order start afresh, whatever groups the fit trained in; the rows fit's
        members trained on (``fit_bags``) stay in their bags."""
        # A copy of fit's members: fit's net stays as it was until the call succeeds.
        stream_net = make_net(copy.deepcopy(net.module_), config, 1, seed, max_epochs=1,
                              shuffle=True)
        stream = cls(params, standardizer, seed, stream_net, config, y_ndim, epochs_before)
        stream.fit_bags = fit_bags
        return stream

    def _out_of_bag(self, hashes, counts):
        """``(n, K)``: which members never trained on each row, in this stream or in the fit
        it went on from."""
        out = counts == 0
        if self.fit_bags is not None:
            out &= ~self.fit_bags.trained(hashes)
        return out

    @property
    def n_epochs(self):
        return self.epochs_before + self.n_calls

    @property
    def n_members(self):
        return self.net.module_.n_members

    def check_params(self, params):
        """A clear error when a parameter that shapes the model changed since the first call."""
        self.check_same_params(self.params, params)

    @staticmethod
    def check_same_params(fitted_params, params):
        """A clear error when ``params`` differ from those the model was built with."""
        for name, value in params.items():
            if name in MUTABLE_PARAMETERS:
                continue
            before = fitted_params[name]
            same = before is value
            if not same:
                try:
                    same = _same_parameter(before, value)
                except Exception:  # noqa: BLE001 - objects without a usable ==
                    same = False
            if not same:
                raise ValueError(
                    f"partial_fit keeps training the model already built, but {name} changed "
                    f"from {before!r} to {value!r} since it was built. Start over with a fresh "
                    "estimator (sklearn.base.clone) or call fit."
                )

    def check_targets(self, y, y_ndim):
        n_targets = self.net.module_.n_targets
        if y_ndim != self.y_ndim or y.shape[1] != n_targets:
            raise ValueError(
                f"y has {y.shape[1]} target(s) ({y_ndim}-D) but the model was trained on "
                f"{n_targets} ({self.y_ndim}-D) by its first fit or partial_fit call; start over "
                "with fit to change the targets."
            )

    def train_on(self, X, y, sample_weight):
        """One pass of every member over a chunk, with its Poisson weights (or every row once,
        without bootstrap); then the chunk joins the calibration sample."""
        if self.weight_unit is None:
            self.weight_unit = float(sample_weight[sample_weight > 0].mean())
        relative = sample_weight / self.weight_unit
        if relative.max() > 1e30:
            raise ValueError(
                f"sample_weight reaches {sample_weight.max():.3g}, more than 1e30 times the first "
                f"chunk's mean weight ({self.weight_unit:.3g}); rescale the weights."
            )
        hashes, counts, weight = chunk_weights(X, y, relative, self.seed, self.n_members,
                                               self.params["bootstrap"])
        self.net.batch_size = net_batch_size(self.config) or len(X)  # None: each whole chunk
        # Out-of-bag weights only for a net that validates on them: a stream pickled when
        # streams still stopped early (now fit only).
        oob_weight = (self._out_of_bag(hashes, counts) * relative[:, None]
                      if self.config.early_stopping else None)
        data = TrainingData(self.standardizer.transform_X(X, self.dtype),
                            self.standardizer.transform_y(y), weight, oob_weight)
        first = self.first_loss
        fit_net(self.net, training_dataset(self.net.module_, data, self.config), self.seed,
                epochs=1, step=self.n_calls, reference_loss=first)
        self.net.history.record("epoch", self.n_calls + 1)  # the call's number, past the cap too
        if first is None:
            self.first_loss = self.net.history[-1, "train_loss"]
        if len(self.net.history) > HISTORY_KEPT:  # one entry per call: bounded, like the rest
            del self.net.history[:-HISTORY_KEPT]
        self.sample.add(X, y, sample_weight, hashes)
        self.n_calls += 1
        self.n_samples_seen += len(X)

    def fitted(self):
        """The current members, ready to evaluate on raw inputs."""
        return FittedEnsemble.around(self.net, self.standardizer, self.config.predict_rows)

    def copy_for_training(self):
        """A copy that a call trains (it takes the model's place when the call succeeds), sharing
        what a call never changes: the callbacks (a user's may hold a lock, a file or a run
        handle, which cannot be copied; nothing of the model lives in them), the parameters,
        the configuration, the standardisation and fit's bags (8 bytes and a bit per member for
        each of fit's rows, read only)."""
        shared = [callback for _, callback in getattr(self.net, "callbacks_", [])]
        shared += [self.params, self.config, self.standardizer, self.fit_bags]
        return copy.deepcopy(self, {id(obj): obj for obj in shared if obj is not None})

    def calibration_set(self):
        """``(X, y_standardised, bag, weight)`` of the calibration sample, its out-of-bag
        members given by the Poisson counts (0: never trained on the row), each raised by one
        where the fit the stream goes on from drew the row for that member (``bag.counts`` are
        then not draws, only 0 for out of bag)."""
        sample = self.sample
        bootstrap = self.params["bootstrap"]
        counts = poisson_counts(sample.hashes, self.seed, self.n_members) if bootstrap else \
            np.ones((len(sample.hashes), self.n_members), dtype=np.uint8)
        if bootstrap and self.fit_bags is not None:  # drawn by fit's member: in its bag
            counts = counts + self.fit_bags.trained(sample.hashes)
        return (sample.X, self.standardizer.transform_y(sample.y),
                Bag(counts, counts > 0, bootstrap, sample.hashes), sample.weight)
