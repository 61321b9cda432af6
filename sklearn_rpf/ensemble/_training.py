"""The skorch side of ensemble training: one net trains a group of members at once.

A group of members is a single skorch :class:`~skorch.NeuralNet` whose module returns the
predictions of all its members, shape ``(n, K, o)``. Bootstrap resampling is expressed as
per-member loss weights (how many times each row was drawn for member ``k``), so the data is held
once, not ``K`` times, and skorch's callbacks, history, device handling and training loop apply to
the group as a whole. Out-of-bag rows (weight zero for member ``k``) give each member a free
validation set: with early stopping, skorch's ``valid_loss`` is the out-of-bag loss and each
member stops, and keeps its best weights, on its own.

:func:`train_module` trains one group's module and returns its net; the members' loss is in
:mod:`._loss`, the callbacks (epoch loss, cosine schedule, member-wise early stopping) in
:mod:`._callbacks`; :mod:`._groups` spreads groups over processes or machines.
"""

import contextlib
import copy
import inspect
import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, PrintLog
from skorch.dataset import Dataset

from .._devices import autocast_off, cpu_by_default, unusable_reason
from .._stack import caller_stacklevel
from ._callbacks import CosineDecay, EpochLoss, MemberEarlyStopping, _StopTraining
from ._loss import MemberLoss, _ratio
from ._networks import EnsembleMLP
from ._seeding import forked_rng, seed_from, torch_generator, torch_seed

# Whether skorch's fit_loop takes the routing method (skorch 1.4 and later).
_LOOP_ROUTES = "_routing_method" in inspect.signature(NeuralNet.fit_loop).parameters

# Cached prior outputs cost n * K * t floats; above this many, priors are recomputed per batch.
MAX_CACHED_PRIOR_ELEMENTS = 50_000_000


# max_epochs="auto": enough epochs for about this many optimizer steps, so that small data sets
# are trained as long as large ones (a few hundred rows make a handful of steps per epoch), and at
# least AUTO_MIN_EPOCHS passes over large ones. Chosen on validation splits (benchmarks/TUNING.md):
# 4,000 steps validated a little better on yacht, but its fit then takes over 5 s.
AUTO_STEPS = 2500
AUTO_MIN_EPOCHS = 20
AUTO_BATCH = 64


@contextlib.contextmanager
def plain_torch(device=None):
    """Gradients on, autocast off and the CPU as the default device, whatever the caller's
    mode: a fit called inside ``torch.no_grad()`` or ``torch.inference_mode()`` (a notebook cell
    that predicts and refits), ``torch.autocast`` or after ``torch.set_default_device`` trains
    as anywhere else. Tensors made inside are ordinary ones, not inference tensors that autograd
    refuses."""
    with torch.inference_mode(False), torch.enable_grad(), autocast_off(device), \
            cpu_by_default():
        yield


def resolve_batch_size(batch_size, n_samples):
    """The regressor's ``batch_size`` parameter as a number of rows: "auto" is min(64, n), None
    all ``n``. For a stream (``n_samples`` None, unknown) "auto" is 64 and None stays None: each
    whole chunk."""
    if n_samples is None:
        return AUTO_BATCH if batch_size == "auto" else batch_size
    if batch_size == "auto":
        return min(AUTO_BATCH, n_samples)
    return n_samples if batch_size is None else min(int(batch_size), n_samples)


def resolve_epochs(max_epochs, n_samples, batch_size):
    """The regressor's ``max_epochs`` parameter as a number: "auto" budgets optimizer steps."""
    if max_epochs != "auto":
        return int(max_epochs)
    steps_per_epoch = math.ceil(n_samples / batch_size)
    return max(AUTO_MIN_EPOCHS, math.ceil(AUTO_STEPS / steps_per_epoch))


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


class CopiedInMemory:
    """``copy.deepcopy`` copies the attributes themselves. skorch's ``__getstate__``, which a
    deep copy would otherwise go through, pickles the modules (to move CUDA tensors when
    unpickled), and a prior given as a lambda, which deep-copies fine, cannot be pickled."""

    def __deepcopy__(self, memo):
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new


class EnsembleNet(CopiedInMemory, NeuralNet):
    """A skorch net that trains a group of members of a :class:`RandomizedPriorEnsemble`.

    Its input is a dict with keys ``x`` (features), ``weight`` (bootstrap counts times sample
    weights, shape ``(n, K)``), and optionally ``oob_weight`` (out-of-bag weights, for validation)
    and ``prior`` (cached prior outputs). The loss is the sum over members of each member's
    weighted mean loss: summing keeps every member's gradient exactly what it would be if it were
    trained alone. Unlike skorch's default, a KeyboardInterrupt (Ctrl-C) is not swallowed: it
    ends ``fit`` with the exception, so that no undertrained model passes for a trained one.
    """

    def get_loss(self, y_pred, y_true, X=None, training=False):
        weight = X["weight"] if training else X["oob_weight"]
        totals, weights = self.criterion_(y_pred, y_true, weight)
        if training and getattr(self, "loss_scale_", None) is not None:
            # Each member's weighted mean over the data set, estimated on this batch: dividing
            # by the batch's own weight sum would count a row drawn three times like a row drawn
            # once whenever it shares a small batch with few others.
            return (totals / self.loss_scale_).sum()
        if not training:  # pooled over the epoch's batches for member-wise early stopping
            sums = (totals.detach(), weights.detach())
            previous = getattr(self, "member_valid_sums_", None)
            self.member_valid_sums_ = sums if previous is None else (
                previous[0] + sums[0], previous[1] + sums[1])
        return _ratio(totals, weights).sum()

    def get_default_callbacks(self):
        # skorch's PassthroughScoring averages each epoch's batch losses by indexing the whole
        # history, and scores a validation loss even when there is no validation set: on small
        # data (many short epochs) that bookkeeping cost more than the training itself.
        defaults = dict(super().get_default_callbacks())
        defaults["train_loss"] = EpochLoss()
        if self.train_split is None:
            del defaults["valid_loss"]
        return list(defaults.items())

    def get_all_learnable_params(self):
        # Frozen priors carry requires_grad=False: keep them out of the optimizer altogether.
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param

    def partial_fit(self, X, y=None, classes=None, epochs=None, **fit_params):
        if not self.initialized_:
            self.initialize()
        # skorch 1.4 names the public entry point for metadata routing (fit passes "fit" in
        # fit_params); earlier versions have no such argument and would hand it to forward.
        routing = fit_params.pop("_routing_method", "partial_fit")
        if _LOOP_ROUTES:
            fit_params["_routing_method"] = routing
        self.notify("on_train_begin", X=X, y=y)
        try:
            self.fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt as interrupt:
            if not self._stopped_by_a_callback(interrupt):
                raise
        self.notify("on_train_end", X=X, y=y)
        return self

    def _stopped_by_a_callback(self, interrupt):
        if isinstance(interrupt, _StopTraining):
            return True
        # skorch's own EarlyStopping (a user's, through net_params) stops with a KeyboardInterrupt
        return any(isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience
                   for _, cb in self.callbacks_)


@dataclass(frozen=True)
class TrainingConfig:
    """How to train, from the regressor's parameters (resolved: ``batch_size`` is a number)."""

    optimizer: type
    lr: float
    weight_decay: float
    max_epochs: int
    batch_size: int
    predict_rows: int
    early_stopping: bool = False
    patience: int = 20
    heteroscedastic: bool = False
    lr_schedule: str = "constant"
    device: str = "cpu"
    verbose: int = 0
    net_params: dict = field(default_factory=dict)


def net_batch_size(config):
    """The batch size a net trains with: ``net_params``' batch_size wins over the parameter's
    (fit and every streaming call alike)."""
    return config.net_params.get("batch_size", config.batch_size)


def make_net(module, config, n_samples, shuffle_seed, max_epochs=None, shuffle=None):
    """An initialised :class:`EnsembleNet` around ``module``, set up as ``config`` says.

    Batches are shuffled when they are smaller than ``n_samples`` (or as ``shuffle`` says)."""
    batch_size = net_batch_size(config)
    kwargs = dict(
        criterion=MemberLoss,
        criterion__heteroscedastic=config.heteroscedastic,
        optimizer=config.optimizer,
        lr=config.lr,
        **weight_decay_kwargs(config.optimizer, config.weight_decay),
        max_epochs=config.max_epochs if max_epochs is None else max_epochs,
        batch_size=config.batch_size,
        iterator_train=TensorBatchIterator,
        iterator_train__shuffle=(shuffle if shuffle is not None else
                                 batch_size is None or batch_size < n_samples),
        # One shuffling stream for every member: a group needs one batch at a time for all.
        iterator_train__generator=torch_generator(shuffle_seed, "shuffle"),
        iterator_valid=TensorBatchIterator,
        iterator_valid__batch_size=max(config.batch_size or 0, config.predict_rows),
        train_split=None,
        device=config.device,
        verbose=config.verbose,
    )
    callbacks = []
    epochs = kwargs["max_epochs"]
    if config.lr_schedule == "cosine" and epochs > 0 and batch_size is not None:
        steps = epochs * math.ceil(n_samples / batch_size)
        callbacks.append(("lr_schedule", CosineDecay(steps)))
    if config.early_stopping:
        kwargs["train_split"] = out_of_bag_split
        callbacks.append(("member_early_stopping", MemberEarlyStopping(config.patience)))
    if not config.verbose:
        # skorch's PrintLog tabulates every epoch even when nothing is printed.
        kwargs["callbacks__print_log"] = None
    user = dict(config.net_params)
    if not any(key in user for key in ("optimizer__fused", "optimizer__foreach")) and \
            "fused" in inspect.signature(config.optimizer).parameters:
        # One kernel per step instead of a Python loop over every parameter tensor: on small
        # batches the optimizer step would otherwise cost more than the forward pass.
        kwargs["optimizer__fused"] = True
    # The user's callbacks are copied: skorch initialises them in place, which would change a
    # parameter (scikit-learn's fit must not) and share the fitted optimizer with the caller.
    kwargs["callbacks"] = callbacks + copy.deepcopy(list(user.pop("callbacks", None) or []))
    kwargs.update(user)
    net = EnsembleNet(module=module, **kwargs)
    net.initialize()
    return net


@dataclass
class TrainingData:
    """Standardised training data and one group's bootstrap weights (NumPy, rows first)."""

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    oob_weight: object = None


def _cached_prior(module, x, rows):
    """Prior outputs of every training row, rows first, computed ``rows`` at a time (chunking
    bounds memory: a prior's hidden activations for every row at once would dwarf its outputs)."""
    with torch.no_grad():
        # Written into one tensor allocated up front: chunk results kept alive between the
        # chunks' freed activations fragment glibc's heap (measured +2 GB for 1,000,000 rows).
        prior = None
        for start in range(0, x.shape[0], rows):
            chunk = module.prior_outputs(x[start : start + rows])
            if prior is None:
                prior = chunk.new_empty(*chunk.shape[:-2], x.shape[0], chunk.shape[-1])
            prior[..., start : start + chunk.shape[-2], :] = chunk
    if not torch.isfinite(prior).all():
        raise ValueError(
            "The prior returned NaN or infinity on the training data; a prior must give finite "
            "outputs for every input row."
        )
    return prior.transpose(0, 1).contiguous() if prior.dim() == 3 else prior


def training_dataset(module, data, config):
    """The skorch dataset of ``data`` for ``module``: tensors on the device, prior outputs cached."""
    device = torch.device(config.device)
    dtype = next(module.trainable.parameters()).dtype
    x = torch.as_tensor(data.x, device=device)
    X = {"x": x, "weight": torch.as_tensor(data.weight, dtype=dtype, device=device)}
    if data.oob_weight is not None:
        X["oob_weight"] = torch.as_tensor(data.oob_weight, dtype=dtype, device=device)
    n_members = data.weight.shape[1]
    if module.prior is not None and x.shape[0] * n_members * data.y.shape[1] <= \
            MAX_CACHED_PRIOR_ELEMENTS:
        X["prior"] = _cached_prior(module, x, config.predict_rows)
    return Dataset(X, torch.as_tensor(data.y, dtype=dtype, device=device))


def fit_net(net, dataset, seed, epochs=None, step=0, reference_loss=None):
    """Train ``net`` on ``dataset`` for ``epochs`` (default: its ``max_epochs``).

    Dropout and other layers that draw at training time use torch's global generator: it is
    forked, seeded from ``(seed, step)``, so the caller's stream is untouched. Divergence is
    judged from the call's first loss, or from ``reference_loss`` (a stream's first call's).
    """
    weight = dataset.X["weight"]
    n = len(weight)
    # Expected weight of a batch, per member: see EnsembleNet.get_loss.
    net.loss_scale_ = weight.sum(dim=0).clamp_min(torch.finfo(weight.dtype).tiny) * min(
        1.0, net.batch_size / n)
    start = len(net.history)
    # The built-in networks draw nothing while training (the priors are checked not to draw).
    draws = not isinstance(getattr(net.module_, "trainable", None), EnsembleMLP)
    with forked_rng(net.device, torch_seed(seed, "dropout", step), needed=draws):
        net.partial_fit(dataset, None, epochs=epochs)
    _check_convergence(net, start, reference_loss)
    return net


def train_module(module, data, config, seed):
    """Train ``module`` (a :class:`RandomizedPriorEnsemble`) on ``data``; the fitted net."""
    module = module.to(torch.device(config.device))
    net = make_net(module, config, len(data.x), seed)
    return fit_net(net, training_dataset(module, data, config), seed)


def _check_convergence(net, start=0, reference=None):
    """A clear error when training blew up, a warning when the loss ended far above its start
    (``reference``, a stream's first call's loss, else this call's first epoch's): reading only
    this call's epochs (from ``start``), so a long stream costs no more per call."""
    losses = [row["train_loss"] for row in itertools.islice(net.history, start, None)
              if "train_loss" in row]
    if not losses:
        return
    if not np.isfinite(losses[-1]):
        first_bad = next(i for i, loss in enumerate(losses) if not np.isfinite(loss))
        where = ("in this partial_fit call" if reference is not None else
                 f"at epoch {first_bad + 1}")
        raise ValueError(
            f"Training diverged: the training loss became {losses[first_bad]} {where}. Lower lr, "
            "or check the data for extreme values."
        )
    first, since = ((reference, "the stream's first partial_fit call") if reference is not None
                    else (losses[0], "the first epoch"))
    # A rise of nine times the first loss's size: for a squared error, ending above ten times
    # the start; a Gaussian NLL can be negative, and its fall below zero is no divergence.
    if losses[-1] - first > 9 * abs(first):
        warnings.warn(
            f"Training diverged: the training loss rose from {first:.3g} in {since} to "
            f"{losses[-1]:.3g} in the last epoch; the predictions are not to be trusted. Lower lr.",
            ConvergenceWarning, stacklevel=caller_stacklevel(),
        )


def set_verbose(net, verbose):
    """``verbose`` on a built net: a silent net has no PrintLog (it tabulates every epoch even
    when nothing is printed, see make_net), so turning printing on brings one back, and off
    drops it."""
    if bool(verbose) != bool(net.verbose):
        # Not set_params, which cannot add a callback that is not there, nor
        # initialize_callbacks, which would reset the others (the schedule's step count).
        kept = [(name, callback) for name, callback in net.callbacks_ if name != "print_log"]
        log = PrintLog(**net.get_params_for("callbacks__print_log")) if verbose else None
        net.callbacks__print_log = log  # for a later initialize_callbacks
        net.callbacks_ = kept + ([("print_log", log.initialize())] if verbose else [])
    net.verbose = verbose


def weight_decay_kwargs(optimizer, weight_decay):
    """``optimizer__weight_decay`` for skorch, left out at 0 (Rprop, LBFGS and SparseAdam take
    none); a clear error when it is not 0 and the optimizer cannot apply it."""
    try:
        parameters = inspect.signature(optimizer).parameters
        takes_it = "weight_decay" in parameters or any(  # a subclass passing **kwargs on
            p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    except (TypeError, ValueError):  # no signature to read: pass it and let the optimizer say
        takes_it = True
    if takes_it:
        return {"optimizer__weight_decay": weight_decay}
    if weight_decay:
        raise ValueError(
            f"weight_decay={weight_decay!r}, but {getattr(optimizer, '__name__', optimizer)} takes "
            "no weight_decay argument; set weight_decay=0 or use an optimizer that has one."
        )
    return {}


def check_device(device):
    """``device`` as a torch.device that exists here, or a clear error saying why not."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must name a torch device such as 'cpu', 'cuda' or 'cuda:0'; got {device!r}."
        ) from exc
    if device.type == "cuda":
        if torch.version.cuda is None:
            raise ValueError(
                f"device={str(device)!r} but this torch ({torch.__version__}) was built without "
                "CUDA; install a CUDA build of torch or use device='cpu'."
            )
        if not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(
                f"device={str(device)!r} but torch sees {torch.cuda.device_count()} CUDA "
                "device(s) here; use device='cpu' or another index."
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps' but the MPS backend is not available here; use 'cpu'.")
    elif device.type not in ("cpu", "cuda", "mps") and (reason := unusable_reason(device)):
        raise ValueError(
            f"device={str(device)!r} cannot hold and return tensors here ({reason}); use "
            "device='cpu' or 'cuda'."
        )
    return device
