"""RandomizedPriorRegressor: a bootstrap ensemble of networks with frozen random priors."""

import copy
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from skorch.callbacks import EarlyStopping
from torch import nn

from ._assembly import (
    PER_MEMBER_ENSEMBLES,
    check_member_output,
    check_prior_output,
    instantiate,
    is_module_factory,
    member_prior,
    member_skorch_nets,
    prior_outputs_in_chunks,
    stack_members,
)
from ._modules import (
    ACTIVATIONS,
    EnsembleMLP,
    FixedFunctionPrior,
    ModuleListEnsemble,
    RandomizedPriorEnsemble,
)
from ._training import (
    EnsembleNet,
    TensorBatchIterator,
    bootstrap_counts,
    forked_rng,
    out_of_bag_split,
    pool_duplicates,
    seed_from,
    to_dataset,
)
from ._uncertainty import ensemble_moments, out_of_bag_noise

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
# Cached prior outputs cost n * K * t floats; above this many, priors are recomputed per batch.
_MAX_CACHED_PRIOR_ELEMENTS = 50_000_000
_PREDICT_ELEMENTS = 4_000_000
# Range of the out-of-bag factor on the members' variance (calibrate_epistemic=True): wide enough to
# correct a prior that is too strong or too weak, narrow enough to keep the spread's shape meaningful.
_EPISTEMIC_SCALE_BOUNDS = (0.1, 10.0)


def _silent(*args, **kwargs):
    """A print that prints nothing (picklable, unlike a lambda)."""


class RandomizedPriorRegressor(RegressorMixin, BaseEstimator):
    """Ensemble of neural networks with randomized prior functions.

    Member ``k`` predicts ``f_k(x) + prior_scale * p_k(x)``: ``p_k`` is a prior network that is
    never trained (random, or any fixed function) and ``f_k`` is trained on bootstrap resample
    ``k`` of the data (Osband, Aslanides & Cassirer, "Randomized Prior Functions for Deep
    Reinforcement Learning", NeurIPS 2018). The spread of the members measures the epistemic
    uncertainty: it is small where data constrain the members and grows, with the priors, away
    from the data.

    By default all members train together in one vectorised ensemble inside a single skorch net;
    bootstrap resampling is applied as per-member loss weights, so the data is never copied ``K``
    times.

    Parameters
    ----------
    module : callable, default=None
        Factory of the trainable member network: an ``nn.Module`` class or any callable returning
        a fresh ``nn.Module``. It is called with the keyword arguments ``n_features`` and
        ``n_outputs`` when its signature accepts them, with no argument otherwise. None builds an
        MLP from ``hidden_layer_sizes`` and ``activation``.
    hidden_layer_sizes : array-like of int, default=(50, 50)
        Hidden layer widths of the default MLP (and of the default prior).
    activation : {"relu", "tanh", "logistic", "selu", "elu", "gelu", "identity"}, default="relu"
        Activation of the default MLP.
    prior : callable, default=None
        The frozen prior. None: the member architecture, independently initialised for each
        member and never trained; the default MLP prior gets variance-preserving (He) weights, so
        that on standardised inputs its output has about unit variance and ``prior_scale`` reads
        as the prior's standard deviation in units of the normalised target. An ``nn.Module``
        class (or ``functools.partial`` of one): instantiated once per member like ``module``.
        An ``nn.Module`` instance or any other callable mapping a float tensor
        ``(n, n_features)`` to ``(n, n_targets)``: one fixed function shared by all members,
        e.g. ``lambda x: torch.sin(3 * x)``.
    prior_scale : float, default=0.3
        Beta, the weight of the prior. 0 gives a plain bootstrap ensemble. The default prior has
        about unit standard deviation, so 0.3 is a prior spread of 0.3 target standard deviations
        (chosen by validation on training splits of the UCI sets, see the README).
    n_estimators : int, default=10
        Number of members.
    bootstrap : bool, default=True
        Train each member on a bootstrap resample (as per-row loss weights). Rows are drawn in
        proportion to ``sample_weight``; each resample has as many draws as there are rows of
        positive weight, or the total weight if larger, so an integer weight acts exactly like
        repeating the row.
    loss : {"squared_error", "gaussian_nll"}, default="squared_error"
        ``"squared_error"``: members predict a mean; the noise is one variance per target,
        estimated from out-of-bag residuals. ``"gaussian_nll"``: heteroscedastic members predict a
        mean and a variance and train on the Gaussian negative log-likelihood.
    max_epochs : int, default=300
        Passes over the data.
    lr : float, default=3e-3
        Learning rate.
    optimizer : type, default=torch.optim.Adam
        A ``torch.optim.Optimizer`` class.
    batch_size : int, "auto" or None, default="auto"
        Mini-batch size; ``"auto"`` is ``min(200, n_samples)``, None the full data set.
    weight_decay : float, default=0.0
        Passed to the optimizer.
    early_stopping : bool, default=False
        Stop when the out-of-bag loss has not improved for ``n_iter_no_change`` epochs and restore
        the best weights. Needs ``bootstrap=True``: the out-of-bag rows are the validation set.
    n_iter_no_change : int, default=20
        Patience of early stopping, in epochs.
    normalize_y : bool, default=True
        Standardise each target before training (so ``prior_scale`` is in units of the target's
        standard deviation); predictions are returned in the original units.
    calibrate_epistemic : bool, default=False
        Fit a factor (between 0.1 and 10) on the members' variance together with the noise, by
        maximum likelihood on the out-of-bag rows, so that the spread is neither over- nor
        under-confident on rows the members did not see. Needs ``bootstrap=True``.
    vectorize : bool or "auto", default="auto"
        True: train all members at once (``torch.func.vmap`` for custom modules). False: train
        independent skorch nets, in parallel with ``n_jobs``. "auto": vectorise when a trial pass
        succeeds, else fall back to independent training with a warning.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the networks.
    device : str or torch.device, default="cpu"
        Where the networks train and predict, e.g. ``"cuda"``.
    net_params : dict, default=None
        Further keyword arguments for the skorch net, e.g.
        ``{"callbacks": [skorch.callbacks.LRScheduler(...)]}`` or ``{"optimizer__momentum": 0.9}``.
    random_state : int, RandomState instance or None, default=None
        Seeds initial weights, priors, bootstrap resamples and shuffling. The global NumPy and
        torch generators are neither reseeded nor drawn from.
    n_jobs : int, default=None
        Parallel jobs for independent (non-vectorised) training.
    verbose : int, default=0
        Print skorch's per-epoch log (and joblib progress for independent training).

    Attributes
    ----------
    ensemble_ : EnsembleNet
        The skorch net holding the whole ensemble; ``ensemble_.history`` is its training log
        (empty when the members were trained independently).
    estimators_ : list of skorch.NeuralNetRegressor
        One skorch net per member, each with module ``net + prior_scale * frozen prior`` and
        predictions in the target's original units (built on first access).
    epistemic_scale_ : ndarray of shape (n_targets,)
        Factor applied to the members' variance (1 unless ``calibrate_epistemic``).
    noise_ : ndarray of shape (n_targets,)
        Squared-error members: noise variance per target, in the target's units squared.
        Heteroscedastic members: the factor applied to their average predicted variance.
    in_bag_counts_ : ndarray of shape (n_samples, n_estimators)
        How many times each training row was drawn for each member.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has string feature names.
    n_epochs_ : int
        Epochs actually run (fewer than ``max_epochs`` after early stopping; for members trained
        independently, the most any member ran).

    See Also
    --------
    sklearn.gaussian_process.GaussianProcessRegressor : exact Bayesian inference for small data.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_rpf import RandomizedPriorRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(64, 1))
    >>> y = np.sin(3 * X[:, 0]) + 0.1 * rng.normal(size=64)
    >>> reg = RandomizedPriorRegressor(n_estimators=5, max_epochs=20, random_state=0).fit(X, y)
    >>> mean, std = reg.predict([[0.0], [3.0]], return_std=True)
    >>> mean.shape, bool(std[1] > std[0])
    ((2,), True)
    """

    _parameter_constraints: dict = {
        "module": [None, callable],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "prior": [None, callable],
        "prior_scale": [Interval(Real, 0, None, closed="left")],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "bootstrap": ["boolean"],
        "loss": [StrOptions({"squared_error", "gaussian_nll"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [callable],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "normalize_y": ["boolean"],
        "calibrate_epistemic": ["boolean"],
        "vectorize": ["boolean", StrOptions({"auto"})],
        "dtype": [StrOptions(set(_DTYPES))],
        "device": [str, torch.device],
        "net_params": [dict, None],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        module=None,
        *,
        hidden_layer_sizes=(50, 50),
        activation="relu",
        prior=None,
        prior_scale=0.3,
        n_estimators=10,
        bootstrap=True,
        loss="squared_error",
        max_epochs=300,
        lr=3e-3,
        optimizer=torch.optim.Adam,
        batch_size="auto",
        weight_decay=0.0,
        early_stopping=False,
        n_iter_no_change=20,
        normalize_y=True,
        calibrate_epistemic=False,
        vectorize="auto",
        dtype="float32",
        device="cpu",
        net_params=None,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.prior = prior
        self.prior_scale = prior_scale
        self.n_estimators = n_estimators
        self.bootstrap = bootstrap
        self.loss = loss
        self.max_epochs = max_epochs
        self.lr = lr
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.normalize_y = normalize_y
        self.calibrate_epistemic = calibrate_epistemic
        self.vectorize = vectorize
        self.dtype = dtype
        self.device = device
        self.net_params = net_params
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    # ------------------------------------------------------------------ building blocks
    @property
    def _torch_dtype(self):
        return _DTYPES[self.dtype]

    @property
    def _predict_rows(self):
        """Rows per prediction batch: keeps members x rows x widest layer near 4M floats."""
        widest = max(self._check_hidden_layer_sizes()) if self.module is None else 256
        return max(256, _PREDICT_ELEMENTS // (self.n_estimators * widest))

    def _check_device(self):
        try:
            return torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"device must name a torch device such as 'cpu', 'cuda' or 'cuda:0'; got "
                f"{self.device!r}."
            ) from exc

    def _check_hidden_layer_sizes(self):
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.ndim != 1 or not np.issubdtype(sizes.dtype, np.integer) or np.any(sizes < 1):
            raise ValueError(
                "hidden_layer_sizes must be a positive integer or a sequence of positive "
                f"integers; got {self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _member_nets(self, n_features, n_outputs, generator, init="uniform"):
        """K freshly initialised trainable nets: an EnsembleMLP or a list of modules."""
        K = self.n_estimators
        if self.module is None:
            return EnsembleMLP(
                K, n_features, n_outputs, self._check_hidden_layer_sizes(), self.activation,
                generator=generator, dtype=self._torch_dtype, init=init,
            )
        if isinstance(self.module, nn.Module):
            raise TypeError(
                "module must be an nn.Module class or a factory returning a fresh module, so "
                f"that each member gets its own initial weights; got the instance {self.module!r}."
            )
        return [instantiate(self.module, n_features, n_outputs).to(self._torch_dtype)
                for _ in range(K)]

    def _prior_nets(self, n_features, n_targets, generator):
        """The frozen prior: per-member nets, a shared fixed function, or None."""
        if self.prior_scale == 0:
            return None
        if self.prior is None:
            return self._member_nets(n_features, n_targets, generator, init="variance_preserving")
        if is_module_factory(self.prior):
            return [instantiate(self.prior, n_features, n_targets).to(self._torch_dtype)
                    for _ in range(self.n_estimators)]
        prior = copy.deepcopy(self.prior)  # never touch the caller's module
        if isinstance(prior, nn.Module):
            prior = prior.to(self._torch_dtype)
        return FixedFunctionPrior(prior)

    def _net_kwargs(self, n_samples, seed):
        batch_size = self.batch_size
        if batch_size == "auto":
            batch_size = min(200, n_samples)
        elif batch_size is None:
            batch_size = n_samples
        kwargs = dict(
            criterion=nn.MSELoss,  # unused by EnsembleNet.get_loss; kept for skorch's API
            optimizer=self.optimizer,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            max_epochs=self.max_epochs,
            batch_size=batch_size,
            iterator_train=TensorBatchIterator,
            iterator_train__shuffle=batch_size < n_samples,
            iterator_train__generator=torch.Generator().manual_seed(seed),
            iterator_valid=TensorBatchIterator,
            iterator_valid__batch_size=max(batch_size, self._predict_rows),
            train_split=None,
            device=self.device,
            verbose=self.verbose,
            heteroscedastic=self.loss == "gaussian_nll",
        )
        callbacks = []
        if self.early_stopping:
            kwargs["train_split"] = out_of_bag_split
            callbacks.append(
                ("early_stopping", EarlyStopping(
                    monitor="valid_loss", patience=self.n_iter_no_change, load_best=True,
                    sink=print if self.verbose else _silent,
                ))
            )
        if not self.verbose:
            # skorch's PrintLog tabulates every epoch even when nothing is printed.
            kwargs["callbacks__print_log"] = None
        user = dict(self.net_params or {})
        kwargs["callbacks"] = callbacks + list(user.pop("callbacks", []))
        kwargs.update(user)
        return kwargs

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train the ensemble.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; they scale each row's loss and its bootstrap probability.

        Returns
        -------
        self : RandomizedPriorRegressor
        """
        X, y = validate_data(
            self, X, y, multi_output=True, y_numeric=True, dtype=np.float64, ensure_min_samples=2
        )
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        for name in ("early_stopping", "calibrate_epistemic"):
            if getattr(self, name) and not self.bootstrap:
                raise ValueError(
                    f"{name}=True needs bootstrap=True: it relies on the out-of-bag rows of each "
                    "member."
                )
        self._check_hidden_layer_sizes()
        self._y_ndim = y.ndim
        y2 = y.reshape(len(y), -1)
        n, n_features = X.shape
        n_targets = y2.shape[1]

        if self.normalize_y:
            self._y_offset = np.average(y2, axis=0, weights=sample_weight)
            scale = np.sqrt(np.average((y2 - self._y_offset) ** 2, axis=0, weights=sample_weight))
            self._y_scale = np.where(scale > 0, scale, 1.0)
        else:
            self._y_offset, self._y_scale = np.zeros(n_targets), np.ones(n_targets)
        y_norm = (y2 - self._y_offset) / self._y_scale

        seed = seed_from(self.random_state)
        rng = np.random.default_rng(seed)
        if self.bootstrap:
            n_draws = max(int(np.count_nonzero(sample_weight)), int(round(sample_weight.sum())))
            # Canonical row order (by content) makes the draws independent of the row order.
            rows = np.column_stack([X, y2])
            order = np.lexsort(rows.T[::-1])
            self.in_bag_counts_ = bootstrap_counts(n_draws, sample_weight, order,
                                                   self.n_estimators, rng)
            in_bag = pool_duplicates(self.in_bag_counts_ > 0, rows, order)
        else:
            # Every row of positive weight is used once by every member.
            in_bag = np.repeat(sample_weight[:, None] > 0, self.n_estimators, axis=1)
            self.in_bag_counts_ = in_bag.astype(np.float64)
        # Bootstrap draws already follow sample_weight; without bootstrap it weights the loss.
        weight = self.in_bag_counts_ * (1.0 if self.bootstrap else sample_weight[:, None])
        oob_weight = ~in_bag * sample_weight[:, None] if self.bootstrap else None
        if self.early_stopping and not oob_weight.any():
            raise ValueError(
                "early_stopping=True but no row is out of bag for any member (large integer "
                "sample weights draw every row); turn early stopping off or use smaller weights."
            )

        dtype = self._fitted_dtype = self._torch_dtype
        x_t = torch.tensor(X, dtype=dtype)
        n_outputs = 2 * n_targets if self.loss == "gaussian_nll" else n_targets
        # Module construction may use torch's global generator (nn.Linear's init, dropout):
        # fork it so that the caller's global state is restored untouched afterwards.
        device = self._check_device()
        with forked_rng(device, seed):
            generator = torch.Generator().manual_seed(seed)
            trainable = stack_members(self._member_nets(n_features, n_outputs, generator), x_t,
                                    self.vectorize)
            check_member_output(trainable, x_t, n_outputs, self.loss == "gaussian_nll")
            prior = self._prior_nets(n_features, n_targets, generator)
            if isinstance(prior, list):
                prior = stack_members(prior, x_t, "auto")
            check_prior_output(prior, x_t, n_targets)
            net_kwargs = self._net_kwargs(n, seed)
            if isinstance(trainable, ModuleListEnsemble) and self.n_estimators > 1:
                if self.vectorize == "auto":
                    warnings.warn(
                        "The member module could not be vectorised with torch.func.vmap; "
                        "training the members independently (n_jobs parallel).",
                        UserWarning, stacklevel=2,
                    )
                trainable = self._fit_independent(trainable, prior, x_t, y_norm, weight,
                                                  oob_weight, net_kwargs, seed)
                net_kwargs["max_epochs"] = 0  # members are trained: only assemble the net
            ensemble = RandomizedPriorEnsemble(trainable, prior, self.prior_scale, n_targets)
            self.ensemble_ = self._fit_net(ensemble, x_t, y_norm, weight, oob_weight, net_kwargs)
        if len(self.ensemble_.history):  # else the members were trained apart (n_epochs_ set)
            self.n_epochs_ = len(self.ensemble_.history)

        means, variances = self._member_outputs(x_t, normalized=True)
        scales = None
        if self.bootstrap:
            bounds = _EPISTEMIC_SCALE_BOUNDS if self.calibrate_epistemic else (1.0, 1.0)
            scales = out_of_bag_noise(y_norm, means, variances, in_bag, sample_weight, bounds)
        if scales is None:  # no out-of-bag rows: fall back on the (optimistic) training residuals
            mean = means.mean(axis=0)
            scales = np.ones(n_targets), (
                np.ones(n_targets) if variances is not None
                else np.average((y_norm - mean) ** 2, axis=0, weights=sample_weight))
        self.epistemic_scale_, noise = scales
        self.noise_ = noise * (self._y_scale**2 if variances is None else 1.0)
        self.__dict__.pop("_estimators", None)
        return self

    def _fit_net(self, ensemble, x, y, weight, oob_weight, net_kwargs):
        """Train ``ensemble`` as one skorch net on the bootstrap-weighted data."""
        dtype = self._torch_dtype
        ensemble = ensemble.to(device=self.device)
        device = torch.device(self.device)
        x = x.to(device)
        prior = None
        n_prior = x.shape[0] * y.shape[1] * self.n_estimators
        if ensemble.prior is not None and self.prior_scale != 0 and n_prior <= _MAX_CACHED_PRIOR_ELEMENTS:
            prior = prior_outputs_in_chunks(ensemble, x, self._predict_rows)
            if prior.dim() == 3:
                prior = prior.transpose(0, 1).contiguous()  # rows first, for batching
        dataset = to_dataset(
            x,
            torch.as_tensor(y, dtype=dtype, device=device),
            torch.as_tensor(weight, dtype=dtype, device=device),
            None if oob_weight is None else torch.as_tensor(oob_weight, dtype=dtype, device=device),
            prior,
        )
        net = EnsembleNet(module=ensemble, **net_kwargs)
        net.initialize()
        if net.max_epochs > 0:
            net.partial_fit(dataset, None)
        return net

    def _fit_independent(self, trainable, prior, x, y, weight, oob_weight, net_kwargs, seed):
        """Train each member as its own skorch net (modules that cannot be vectorised)."""

        def own_prior(k):  # a per-member prior as a one-member ensemble; a shared one as it is
            if isinstance(prior, PER_MEMBER_ENSEMBLES):
                return ModuleListEnsemble([member_prior(prior, k)])
            return prior

        def fit_one(k):
            with forked_rng(torch.device("cpu"), seed + k + 1):
                one = RandomizedPriorEnsemble(ModuleListEnsemble([trainable.members[k]]),
                                              own_prior(k), self.prior_scale, y.shape[1])
                shuffle = torch.Generator().manual_seed(seed + k + 1)
                kwargs = dict(net_kwargs, iterator_train__generator=shuffle)
                net = self._fit_net(one, x, y, weight[:, k:k + 1],
                                    None if oob_weight is None else oob_weight[:, k:k + 1], kwargs)
                return net.module_.trainable.members[0].cpu(), len(net.history)

        results = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)(
            delayed(fit_one)(k) for k in range(self.n_estimators)
        )
        self.n_epochs_ = max(epochs for _, epochs in results)
        return ModuleListEnsemble([member for member, _ in results])

    # ------------------------------------------------------------------ predict
    def _member_outputs(self, X, normalized=False):
        """Member means and (heteroscedastic) variances, each ``(K, n, t)``."""
        if not isinstance(X, torch.Tensor):
            X = torch.tensor(X, dtype=self._fitted_dtype)
        out = self.ensemble_.forward(X).to(torch.float64).numpy().transpose(1, 0, 2)
        t = self._y_offset.shape[0]
        means, variances = out[..., :t], (out[..., t:] if out.shape[-1] > t else None)
        if normalized:
            return means, variances
        means = means * self._y_scale + self._y_offset
        return means, None if variances is None else variances * self._y_scale**2

    def _validate_predict_input(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.float64)

    def _format(self, array):
        return array[..., 0] if self._y_ndim == 1 else array

    def predict_members(self, X):
        """Every member's prediction.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_members : ndarray of shape (n_estimators, n_samples) or (n_estimators, n_samples, n_targets)
        """
        X = self._validate_predict_input(X)
        means, _ = self._member_outputs(X)
        return self._format(means)

    def predict(self, X, return_std=False, epistemic=False):
        """Predictive mean and, optionally, standard deviation.

        The mean is the average of the members. With ``return_std=True`` the standard deviation
        of the predictive distribution is ``sqrt(epistemic + aleatoric)``: ``epistemic`` is the
        variance of the member means (``ddof=1``), ``aleatoric`` the noise variance
        (``noise_`` for squared-error members; ``noise_`` times the members' average predicted
        variance for ``loss="gaussian_nll"``). With ``epistemic=True`` the standard deviation is
        the members' spread alone, the uncertainty about the function rather than about a new
        observation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
        epistemic : bool, default=False
            Return the epistemic part of the standard deviation only.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_targets)
        y_std : ndarray of the same shape, only with ``return_std=True``
        """
        X = self._validate_predict_input(X)
        means, variances = self._member_outputs(X)
        mean, epistemic_var, aleatoric = ensemble_moments(means, variances)
        if not return_std:
            return self._format(mean)
        epistemic_var = self.epistemic_scale_ * epistemic_var
        if epistemic:
            variance = epistemic_var
        elif aleatoric is None:
            variance = epistemic_var + self.noise_
        else:
            variance = epistemic_var + self.noise_ * aleatoric
        return self._format(mean), self._format(np.sqrt(variance))

    def predict_priors(self, X):
        """The frozen priors' contribution ``prior_scale * p_k(X)``, in the target's units.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        priors : ndarray of shape (n_estimators, n_samples) or (n_estimators, n_samples, n_targets)
            Zeros when ``prior_scale=0``. A prior shared by all members is repeated.
        """
        X = self._validate_predict_input(X)
        ensemble = self.ensemble_.module_
        n_targets = self._y_offset.shape[0]
        n_members = self.in_bag_counts_.shape[1]  # as fitted, whatever set_params said since
        if ensemble.prior is None or ensemble.prior_scale == 0:
            return self._format(np.zeros((n_members, X.shape[0], n_targets)))
        x = torch.tensor(X, dtype=self._fitted_dtype, device=self.ensemble_.device)
        prior = prior_outputs_in_chunks(ensemble, x, self._predict_rows)
        prior = prior.to(torch.float64).cpu().numpy()
        prior = np.broadcast_to(prior, (n_members, X.shape[0], n_targets))
        return self._format(ensemble.prior_scale * prior * self._y_scale)

    # ------------------------------------------------------------------ members as skorch nets
    @property
    def estimators_(self):
        """One fitted skorch ``NeuralNetRegressor`` per member (see the class docstring)."""
        check_is_fitted(self, "ensemble_")
        if "_estimators" not in self.__dict__:
            self.__dict__["_estimators"] = member_skorch_nets(
                self.ensemble_.module_, self.in_bag_counts_.shape[1],
                torch.as_tensor(self._y_offset, dtype=self._fitted_dtype),
                torch.as_tensor(self._y_scale, dtype=self._fitted_dtype),
                dict(optimizer=self.optimizer, lr=self.lr, device=self.ensemble_.device,
                     optimizer__weight_decay=self.weight_decay, max_epochs=self.max_epochs,
                     batch_size=self.ensemble_.batch_size),
            )
        return self.__dict__["_estimators"]
