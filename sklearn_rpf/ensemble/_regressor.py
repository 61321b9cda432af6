"""RandomizedPriorRegressor: a bootstrap ensemble of networks with frozen random priors.

This module is the scikit-learn face of the ensemble: parameters, validation, and the phases of
``fit`` (validate, standardise, draw the bootstrap, build and train the members, calibrate the
noise out of bag), each implemented in the module that owns the concept.
"""

import warnings
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
import torch
from scipy.stats import norm
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    check_is_fitted,
    validate_data,
)

from .._arrays import check_numeric_features, finite_even_if_assumed, numeric_array, untracked
from .._devices import cpu_by_default
from .._stack import caller_stacklevel
from ._assembly import EnsembleSpec
from ._bootstrap import make_bag
from ._conformal import REPEATED_ROWS_WARNING
from ._fit_checks import check_out_of_bag, check_training_data
from ._fitted_state import one_training_at_a_time, read_together, unchanged_on_failure
from ._groups import train_members
from ._inference import FittedEnsemble, predict_rows
from ._member_net import member_net
from ._networks import ACTIVATIONS
from ._scaling import Standardizer
from ._seeding import seed_from
from ._streaming import FitBags, Stream
from ._training import (
    TrainingConfig,
    check_device,
    plain_torch,
    resolve_batch_size,
    resolve_epochs,
    set_verbose,
)
from ._uncertainty import balanced_picks, calibrate, draw_functions, ensemble_moments

_DTYPES = {"float32": (torch.float32, np.float32), "float64": (torch.float64, np.float64)}


class RandomizedPriorRegressor(MultiOutputMixin, RegressorMixin, BaseEstimator):
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
        The frozen prior. None: an MLP of ``hidden_layer_sizes`` and ``activation`` (the default
        member architecture, whatever ``module`` is), independently initialised for each member
        and never trained, with variance-preserving (He) weights, so that on standardised inputs
        its output has about unit variance and ``prior_scale`` reads as the prior's standard
        deviation in units of the normalised target. An ``nn.Module``
        class (or ``functools.partial`` of one): instantiated once per member like ``module``.
        An ``nn.Module`` instance or any other callable mapping a float tensor
        ``(n, n_features)`` to ``(n, n_targets)``: one fixed function shared by all members,
        e.g. ``lambda x: torch.sin(3 * x)``. Priors, like members, see the inputs standardised
        when ``normalize_X=True``.
    prior_scale : float, default=0.3
        Beta, the weight of the prior. 0 gives a plain bootstrap ensemble. The default prior has
        about unit standard deviation, so 0.3 is a prior spread of 0.3 target standard deviations
        (chosen by validation on training splits of the UCI sets, see the README).
    n_estimators : int, default=20
        Number of members. Members train together (one vectorised network per group), so 20
        cost about 1.2-1.5x the time of 10, not 2x; 20 rather than 10 gained 0.06 nats of
        validation NLL on average over the five UCI sets, 30 only 0.01 more
        (benchmarks/TUNING.md, round 6).
    bootstrap : bool, default=True
        Train each member on a bootstrap resample (as per-row loss weights). Rows are drawn in
        proportion to ``sample_weight``; each resample has ``round(total weight)`` draws, so an
        integer weight acts exactly like repeating the row in training, but at least one and
        at most 10 per row of positive weight (larger weights still set the probabilities; the
        cap keeps the cost bounded). The conformal calibration is the exception: a row of weight
        2 is out of bag only for the members that drew it not at all, where each of two copies
        is out of bag for every member that missed that copy (``predict_interval``).
    loss : {"squared_error", "gaussian_nll"}, default="squared_error"
        ``"squared_error"``: members predict a mean; the noise is one variance per target,
        estimated from out-of-bag residuals. ``"gaussian_nll"``: heteroscedastic members predict a
        mean and a variance and train on the Gaussian negative log-likelihood.
    max_epochs : int or "auto", default="auto"
        Passes over the data. ``"auto"`` budgets optimizer steps rather than epochs: enough
        epochs for 2,500 steps, and at least 20, so that a few hundred rows (a handful of batches
        per epoch) are trained as long as a few thousand (yacht: 500 epochs; kin8nm: 22).
    lr : float, default=1e-2
        Initial learning rate.
    lr_schedule : {"cosine", "constant"}, default="cosine"
        ``"cosine"``: the learning rate decays along half a cosine to 0 over the
        ``max_epochs`` epochs' steps (large steps first, then small ones that settle each
        member). ``partial_fit`` always trains at the constant ``lr``: no schedule can know where
        a stream ends.
    optimizer : type, default=torch.optim.Adam
        A ``torch.optim.Optimizer`` class (its fused implementation when it has one, unless
        ``net_params`` sets ``optimizer__fused`` or ``optimizer__foreach``).
    batch_size : int, "auto" or None, default="auto"
        Mini-batch size; ``"auto"`` is ``min(64, n_samples)``, None the full data set.
    weight_decay : float, default=1e-4
        Passed to the optimizer.
    early_stopping : bool, default=False
        Member by member: a member stops counting epochs when its own out-of-bag loss has not
        improved for ``n_iter_no_change`` epochs and gets its best weights back; training ends
        when every member has stopped. Needs ``bootstrap=True``: the out-of-bag rows are the
        validation set. ``fit`` only: ``partial_fit`` trains one pass per call, and the caller
        decides when the stream ends.
    n_iter_no_change : int, default=20
        Patience of early stopping, in epochs.
    normalize_X : bool, default=True
        Standardise each input feature (weighted mean 0, variance 1) before the members and the
        priors see it, so that inputs of any finite magnitude train well and the default prior
        has its intended scale. Inputs too far from the training data to be represented in
        ``dtype`` once standardised give a clear error at predict time.
    normalize_y : bool, default=True
        Standardise each target before training (so ``prior_scale`` is in units of the target's
        standard deviation); predictions are returned in the original units.
    calibrate_epistemic : bool, default=False
        Fit a factor (between 0.1 and 10) on the members' variance together with the noise, by
        maximum likelihood on the out-of-bag rows, so that the spread is neither over- nor
        under-confident on rows the members did not see. Needs ``bootstrap=True``.
    vectorize : bool or "auto", default="auto"
        True: train members together (stacked weights, or ``torch.func.vmap`` for custom
        modules). False: train each member as its own skorch net, in parallel with ``n_jobs``.
        "auto": vectorise when a trial pass succeeds, else fall back to one net per member with a
        warning.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the networks.
    device : str or torch.device, default="cpu"
        Where the networks train and predict, e.g. ``"cuda"``.
    net_params : dict, default=None
        Further keyword arguments for the skorch net, e.g.
        ``{"callbacks": [skorch.callbacks.LRScheduler(...)]}`` or, with
        ``optimizer=torch.optim.SGD``, ``{"optimizer__momentum": 0.9}``. Callbacks are copied
        at fit, so the parameter stays as given; the fitted ones are in ``ensemble_.callbacks_``.
        Keys that have a parameter here (``device``, ``lr`` and ``optimizer__lr``,
        ``optimizer``, ``optimizer__weight_decay``, ``max_epochs``) or
        name a part the regressor builds (``module``, ``criterion``, ``train_split``, the
        iterators) are refused with a ValueError; ``batch_size`` may be overridden.
    random_state : int, RandomState instance or None, default=None
        Seeds initial weights, priors, bootstrap resamples and shuffling. Member ``k``'s weights,
        prior and resample depend only on ``(random_state, k)`` and the data (resamples are
        drawn over the rows in the order of a hash of their values: the order of the rows does
        not matter and identical rows are drawn together, but the same data in other units or
        another dtype is other values and draws other resamples), and the mini-batch order is
        shared, so the fitted members do not depend on how they were grouped for training:
        in float64 to rounding, which training can amplify (after 2,500 steps on a toy, 16 of
        20 members bitwise equal, the others within 1e-11 to 4e-3). In float32, the default
        fused Adam kernel rounds a tensor's tail differently with the group size, and 2,500
        steps amplify that rounding (3.7e-3 on predictions in ``benchmarks/bench_scale.py``);
        the members are then equal in distribution, not bitwise. Pass ``dtype="float64"``, or
        ``net_params={"optimizer__foreach": True}`` (slower, unfused updates; bitwise equal for
        groups of two or more members) where equality matters. The global NumPy and
        torch generators are neither reseeded nor drawn from.
    n_jobs : int, default=None
        Members are trained in ``n_jobs`` groups, one per joblib worker process; each group is
        vectorised. None follows the active joblib configuration (one group in this process by
        default; one per worker thread inside ``joblib.parallel_backend("dask")``).
    verbose : int, default=0
        Print skorch's per-epoch log (and joblib progress for independent training).

    Attributes
    ----------
    ensemble_ : EnsembleNet
        The skorch net holding the whole ensemble; ``ensemble_.history`` is its training log
        (empty when the members were trained in several groups; after ``partial_fit``, the last
        1,000 calls', so that a long stream stays in bounded memory).
    estimators_ : list of skorch.NeuralNetRegressor
        One skorch net per member, each with module ``net + prior_scale * frozen prior`` and
        predictions in the target's original units (built on first access).
    epistemic_scale_ : ndarray of shape (n_targets,)
        Factor applied to the members' variance (1 unless ``calibrate_epistemic``).
    noise_ : ndarray of shape (n_targets,)
        Squared-error members: noise variance per target, in the target's units squared (inf
        past float64's range, for targets beyond about 1e154; imprecise for targets below about
        1e-154, and 0 for much smaller ones; predictions are computed in standardised units and
        are not affected). Heteroscedastic members: the factor applied to their average predicted
        variance.
    in_bag_counts_ : ndarray of shape (n_samples, n_estimators), unsigned int
        How many times each training row was drawn for each member (the smallest unsigned type
        that holds the counts). Copies (rows with the same X and y) are drawn separately, then
        pooled for early stopping and the noise fit: a member that drew any copy has every copy
        in bag there, even where a copy's own count is 0. The conformal intervals go by these
        counts, row by row (``predict_interval``).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has string feature names.
    n_epochs_ : int
        Epochs actually run (fewer than ``max_epochs`` after early stopping; for members trained
        in groups, the most any group ran).

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
        "max_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "lr_schedule": [StrOptions({"constant", "cosine"})],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [callable],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "normalize_X": ["boolean"],
        "normalize_y": ["boolean"],
        "calibrate_epistemic": ["boolean"],
        "vectorize": ["boolean", StrOptions({"auto"})],
        "dtype": [StrOptions({"float32", "float64"})],
        "device": [str, torch.device],
        "net_params": [dict, None],
        "random_state": ["random_state"],
        "n_jobs": [Interval(Integral, 1, None, closed="left"),
                   Interval(Integral, None, -1, closed="right"), None],  # joblib: 0 means nothing
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
        n_estimators=20,
        bootstrap=True,
        loss="squared_error",
        max_epochs="auto",
        lr=1e-2,
        lr_schedule="cosine",
        optimizer=torch.optim.Adam,
        batch_size="auto",
        weight_decay=1e-4,
        early_stopping=False,
        n_iter_no_change=20,
        normalize_X=True,
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
        self.lr_schedule = lr_schedule
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.normalize_X = normalize_X
        self.normalize_y = normalize_y
        self.calibrate_epistemic = calibrate_epistemic
        self.vectorize = vectorize
        self.dtype = dtype
        self.device = device
        self.net_params = net_params
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ what to build and how
    def _hidden_layer_sizes(self):
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.ndim != 1 or not np.issubdtype(sizes.dtype, np.integer) or np.any(sizes < 1) \
                or any(isinstance(s, bool | np.bool_) for s in np.atleast_1d(
                    np.asarray(self.hidden_layer_sizes, dtype=object))):  # True is not a width
            raise ValueError(
                "hidden_layer_sizes must be a positive integer or a sequence of positive "
                f"integers; got {self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _ensemble_spec(self, n_features, n_targets, device):
        spec = EnsembleSpec(
            module=self.module, hidden_layer_sizes=self._hidden_layer_sizes(),
            activation=self.activation, prior=self.prior, prior_scale=float(self.prior_scale),
            n_features=n_features, n_targets=n_targets,
            heteroscedastic=self.loss == "gaussian_nll", dtype=_DTYPES[self.dtype][0],
            vectorize=self.vectorize,
        )
        spec.check_memory(self.n_estimators, device)
        return spec

    def _training_config(self, n_samples, device):
        widest = max(self._hidden_layer_sizes()) if self.module is None else 256
        batch_size = resolve_batch_size(self.batch_size, n_samples)
        return TrainingConfig(
            optimizer=self.optimizer, lr=self.lr, weight_decay=self.weight_decay,
            max_epochs=resolve_epochs(self.max_epochs, n_samples, batch_size),
            batch_size=batch_size, lr_schedule=self.lr_schedule,
            predict_rows=predict_rows(self.n_estimators, widest),
            early_stopping=self.early_stopping, patience=self.n_iter_no_change,
            heteroscedastic=self.loss == "gaussian_nll", device=str(device),
            verbose=self.verbose, net_params=dict(self.net_params or {}),
        )

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train the ensemble.

        Validate, standardise, draw each member's bootstrap resample, build and train the members
        (in groups, see ``n_jobs``), then fit the noise on the out-of-bag rows. The fitted state
        is assigned at the end: a fit that fails or is interrupted leaves the estimator exactly
        as it was.

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
        with one_training_at_a_time(self), unchanged_on_failure(self), plain_torch(self.device):
            X, y, sample_weight, y_ndim = check_training_data(self, X, y, sample_weight)
            if self.n_estimators == 1:
                warnings.warn(
                    "n_estimators=1: a single member has no spread, so the epistemic standard "
                    "deviation is 0 everywhere, far from the data too; use several members for "
                    "uncertainty.", UserWarning, stacklevel=caller_stacklevel(),
                )
            device = check_device(self.device)
            spec = self._ensemble_spec(X.shape[1], y.shape[1], device)
            standardizer = Standardizer.fit(X, y, sample_weight, self.normalize_X,
                                            self.normalize_y)
            seed = seed_from(self.random_state)
            bag = make_bag(X, y, sample_weight, self.n_estimators, seed, self.bootstrap)
            # Only early stopping validates out of bag; without it no (n, K) weights are built,
            # nor sliced into every batch.
            oob_weight = bag.out_of_bag_weights(sample_weight) if self.early_stopping else None
            if self.early_stopping:
                check_out_of_bag(oob_weight)
            x = standardizer.transform_X(X, _DTYPES[self.dtype][1])
            y_norm = standardizer.transform_y(y)
            config = self._training_config(len(X), device)
            net, n_epochs = train_members(spec, x, y_norm, bag.loss_weights(sample_weight),
                                          oob_weight, config, seed, self.n_jobs)
            fitted = FittedEnsemble.around(net, standardizer, config.predict_rows)
            calibration = calibrate(fitted, X, y_norm, bag, sample_weight,
                                    self.calibrate_epistemic, spec.heteroscedastic, seed=seed)
            self._set_fitted_state(net, fitted, calibration, y_ndim, n_epochs,
                                   in_bag_counts_=bag.counts, _fit_hashes=bag.hashes,
                                   _fitted_bootstrap=bag.bootstrap,
                                   _fit_params=self.get_params())
        return self

    def _set_fitted_state(self, net, fitted, calibration, y_ndim, n_epochs, **more):
        """Everything computed: now, and only now, the estimator changes."""
        state = dict(
            ensemble_=net, epistemic_scale_=calibration.epistemic_scale, n_epochs_=n_epochs,
            _noise=calibration.noise,  # standardised units: what predictions use
            _fitted=fitted, _calibration=calibration.conformal, _y_ndim=y_ndim, **more,
        )
        with np.errstate(over="ignore", under="ignore"):  # y of 1e200: noise_ is inf
            state["noise_"] = calibration.noise * (
                1.0 if self.loss == "gaussian_nll" else fitted.standardizer.y_scale**2)
        # A fit starts over (no stream to continue, no stale member nets); a stream goes on.
        for stale in ("_stream", "n_samples_seen_", "in_bag_counts_", "_fit_hashes",
                      "_fit_params", "_estimators"):
            self.__dict__.pop(stale, None)
        self.__dict__.update(state)

    def partial_fit(self, X, y, sample_weight=None):
        """Train on one chunk of data: one pass, for data streamed from disk or a cluster.

        The first call builds the ensemble and fixes the standardisation of inputs and targets on
        its chunk (later chunks are standardised the same way: the networks' inputs must not
        shift under them, so make the first chunk representative, e.g. shuffled). Each call then
        trains every member for one pass over its chunk, with the online (Poisson) bootstrap of
        Oza & Russell: member ``k`` weights a row by a Poisson(1) count drawn from
        ``(random_state, k)`` and the row's content, whatever the chunking. Rows with count 0
        are out of bag for member ``k``; a uniform sample of at most 20,000 of the rows seen so
        far is re-scored after every call to refit the noise and the conformal calibration, so
        ``predict(X, return_std=True)`` and ``predict_interval`` work after any number of calls,
        in bounded memory. Parameters other than ``verbose`` and ``n_jobs`` may not change
        between calls. After ``fit``, ``partial_fit`` goes on training the fitted members (with
        fit's standardisation); their noise and intervals then come from the streamed rows only,
        each out of bag for the members that trained on it neither in the stream nor in the fit
        (fit's rows are known by content, the exact values: streaming them again does not make
        them new data; fit keeps 8 bytes per training row for this, and the stream keeps them
        with a bit per row and member).
        Members are trained in this process (``n_jobs`` does not apply), on a copy of the model
        that replaces it when the call succeeds: a failed call leaves the model as it was, and
        predictions from other threads meanwhile use the model as it was before the call.
        Calls from several threads on one estimator (and a ``fit`` among them) run one after
        the other.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, multiplying each row's Poisson counts.

        Returns
        -------
        self : RandomizedPriorRegressor
        """
        with one_training_at_a_time(self):
            return self._partial_fit(X, y, sample_weight)

    def _partial_fit(self, X, y, sample_weight):
        stream = getattr(self, "_stream", None)
        fitted_by_fit = stream is None and hasattr(self, "ensemble_")
        self._validate_params()  # every call: verbose and n_jobs may change, but to valid values
        if stream is not None:
            stream.check_params(self.get_params())
        elif fitted_by_fit:
            Stream.check_same_params(self._fit_params, self.get_params())
        with unchanged_on_failure(self), plain_torch(self.device):
            X, y, sample_weight, y_ndim = check_training_data(
                self, X, y, sample_weight, reset=stream is None and not fitted_by_fit)
            if fitted_by_fit:  # go on training the members fit trained
                hashes = getattr(self, "_fit_hashes", None)  # None: fitted before it was kept
                if hashes is None and self._fitted_bootstrap:
                    warnings.warn(
                        "This model was fitted by a version that did not keep which rows its "
                        "members trained on: streaming those rows again will count them out of "
                        "bag, and the noise and the conformal intervals will come out too "
                        "narrow. Refit it to stream on safely.", UserWarning,
                        stacklevel=caller_stacklevel())
                stream = Stream.from_fitted(self.ensemble_, self._fitted.standardizer,
                                            self._fit_params, seed_from(self.random_state),
                                            self._stream_config(len(X)), self._y_ndim,
                                            self.n_epochs_, None if hashes is None else
                                            FitBags.from_fit(hashes, self.in_bag_counts_))
            elif stream is None:
                stream = Stream.start(
                    self._ensemble_spec(X.shape[1], y.shape[1], check_device(self.device)),
                    self._stream_config(len(X)),
                    self.get_params(), seed_from(self.random_state), X, y, sample_weight, y_ndim)
            else:
                # A copy trains and takes the model's place when the call succeeds: predictions
                # from other threads meanwhile read the members as they were (and cannot switch
                # them to eval mode mid-epoch), and a failed call leaves the stream untouched.
                stream = stream.copy_for_training()
            stream.check_targets(y, y_ndim)
            set_verbose(stream.net, self.verbose)
            stream.train_on(X, y, sample_weight)
            fitted = stream.fitted()
            calibration = calibrate(fitted, *stream.calibration_set(),
                                    self.calibrate_epistemic, self.loss == "gaussian_nll",
                                    seed=stream.seed)
            self._set_fitted_state(stream.net, fitted, calibration, stream.y_ndim,
                                   stream.n_epochs, _stream=stream,
                                   n_samples_seen_=stream.n_samples_seen,
                                   _fitted_bootstrap=self.bootstrap)
        return self

    def _stream_config(self, n_samples):
        """Streams train with a constant learning rate (no schedule can know the stream's end),
        shuffled batches of ``batch_size`` rows ("auto": 64; None: each whole chunk; a
        ``batch_size`` in ``net_params`` overrides it, as in fit) and no early stopping (one pass
        per call: the caller decides when the stream ends)."""
        config = self._training_config(n_samples, check_device(self.device))
        return replace(config, lr_schedule="constant", batch_size=resolve_batch_size(
            self.batch_size, None), max_epochs=1, early_stopping=False)

    # ------------------------------------------------------------------ predict
    def _validate_predict_input(self, X):
        check_is_fitted(self)
        X = check_numeric_features(untracked(X))
        return finite_even_if_assumed(validate_data(self, X, reset=False, dtype=np.float64), "X")

    def _format(self, array):
        """Drop the target axis for a regressor fitted on a 1-D ``y``."""
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
        members = self._fitted.members(X)
        return self._format(self._fitted.standardizer.inverse_mean(members))

    def predict(self, X, return_std=False, epistemic=False):
        """Predictive mean and, optionally, standard deviation.

        The mean is the average of the members. With ``return_std=True`` the standard deviation
        of the predictive distribution is ``sqrt(epistemic + aleatoric)``: ``epistemic`` is
        ``epistemic_scale_`` times the variance of the member means (``ddof=1``; 0 with a single
        member, which has no spread to measure), ``aleatoric`` the noise variance
        (``noise_`` for squared-error members; ``noise_`` times the members' average predicted
        variance for ``loss="gaussian_nll"``). With ``epistemic=True`` the standard deviation is
        the members' spread alone, the uncertainty about the function rather than about a new
        observation. Rows are processed in batches: memory beyond the outputs does not grow with
        the number of rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
        epistemic : bool, default=False
            Return the epistemic part of the standard deviation only (with ``return_std=True``).

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_targets)
        y_std : ndarray of the same shape, only with ``return_std=True``
        """
        for name, flag in (("return_std", return_std), ("epistemic", epistemic)):
            if not isinstance(flag, bool | np.bool_):  # "no" is truthy: it would ask for the std
                raise ValueError(f"{name} must be True or False; got {flag!r}.")
        if epistemic and not return_std:  # the mean alone would come back, the flag unread
            raise ValueError("epistemic=True selects which standard deviation is returned; "
                             "it needs return_std=True.")
        return self._predict(self._validate_predict_input(X), return_std, epistemic)

    def _predict(self, X, return_std=False, epistemic=False):
        """``predict`` on validated ``X`` (no second validation, no second feature-name check)."""
        fitted, noise, scale = read_together(self, "_fitted", "_noise", "epistemic_scale_")
        mean = np.empty((len(X), fitted.n_targets))
        std = np.empty_like(mean) if return_std else None
        # noise: standardised units, no variance is formed in the target's units
        for rows, means, variances in fitted.batches(X):
            batch_mean, spread, aleatoric = ensemble_moments(means, variances)
            mean[rows] = batch_mean
            if return_std:
                variance = scale * spread
                if not epistemic:
                    variance += noise if aleatoric is None else noise * aleatoric
                std[rows] = np.sqrt(variance)
        mean = self._format(fitted.standardizer.inverse_mean(mean))
        if not return_std:
            return mean
        return mean, self._format(fitted.standardizer.inverse_std(std))

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
        priors = self._fitted.scaled_priors(X)
        return self._format(self._fitted.standardizer.inverse_std(priors))

    def predict_interval(self, X, confidence=0.95, method="conformal"):
        """Prediction intervals for new observations at ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        confidence : float, default=0.95
            Nominal coverage, strictly between 0 and 1 (at least 0.5 for the conformal
            methods).
        method : {"conformal", "conformal-studentized", "gaussian"}, default="conformal"
            ``"conformal"``: jackknife+-after-bootstrap (Kim, Xu & Barber, NeurIPS 2020) from the
            out-of-bag residuals kept at fit time, no refit. For exchangeable data, Kim et al.
            prove coverage of at least ``1 - 2 (1 - confidence)`` (90% for 0.95) when the
            number of members is random as in their theorem; with a fixed number of members it
            holds up to that detail, and in practice coverage is close to ``confidence``. Needs
            ``bootstrap=True``. With few training rows the bound can be infinite: the guarantee
            cannot be met with fewer than about ``1 / (1 - confidence)`` rows. Past 20,000
            calibration rows, fit keeps a uniform sample of 20,000 (by a hash of each row's
            content keyed by ``random_state``; no residual plays a part): the guarantee holds
            with that many, and the cost stops growing with the training set. Rows are out of
            bag by index, as in Kim et al.: a member that drew a copy of row ``i`` but not row
            ``i`` itself still counts for it (under exchangeability a test point repeats
            training rows as often as they repeat each other; drop rows duplicated by mistake,
            which make the interval too narrow for new data: it warns when more than 30% of the
            training rows have an exact copy). A row's integer weight is not a set of copies
            here: it is out of bag only for the members that drew none of it. A model trained by
            ``partial_fit`` draws copies together (its draws follow the rows' content), so there
            a member that drew a copy never counts for the row.
            ``"conformal-studentized"``: the same with residuals divided by the out-of-bag
            members' predictive standard deviation, so that the interval widens where the
            members disagree. The guarantee holds only approximately: the score also uses the
            noise level fitted on all the out-of-bag rows. Sample weights count relative to
            their mean in both variants (the test point counts as one row), so scaling every
            weight changes nothing in the interval of a fitted model (fit's bootstrap draws do
            follow the weights' scale: see ``bootstrap``).
            ``"gaussian"``: ``mean -/+ z std`` from ``predict(X, return_std=True)``, with no
            guarantee beyond the Gaussian model.

        Returns
        -------
        lower, upper : ndarrays shaped like ``predict(X)``

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_rpf import RandomizedPriorRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-1, 1, size=(200, 1))
        >>> y = np.sin(3 * X[:, 0]) + 0.1 * rng.normal(size=200)
        >>> reg = RandomizedPriorRegressor(n_estimators=10, max_epochs=30, random_state=0)
        >>> lower, upper = reg.fit(X, y).predict_interval([[0.0], [0.5]], confidence=0.9)
        >>> bool(np.all(lower < upper))
        True
        """
        alpha = self._check_confidence(confidence)
        if method not in ("conformal", "conformal-studentized", "gaussian"):
            raise ValueError(
                "method must be 'conformal', 'conformal-studentized' or 'gaussian'; got "
                f"{method!r}."
            )
        X = self._validate_predict_input(X)
        if method == "gaussian":
            mean, std = self._predict(X, return_std=True)
            half = norm.ppf(1 - alpha / 2) * std
            return mean - half, mean + half
        if confidence < 0.5:
            raise ValueError(
                f"method={method!r} needs confidence >= 0.5; got {confidence!r}. Below it the "
                "jackknife+ bounds (an upper quantile of lower ends, a lower quantile of upper "
                "ends) can cross. Use method='gaussian' for narrow central intervals."
            )
        fitted, calibration, noise, scale = read_together(
            self, "_fitted", "_calibration", "_noise", "epistemic_scale_")
        if calibration is None:
            why = ("this model was fitted with bootstrap=False (every member saw every row); "
                   "refit with bootstrap=True" if not self._fitted_bootstrap else
                   "no training row is out of bag for any member (every row was drawn by "
                   "every member: too few rows of positive weight, or weights so large that "
                   "each row is drawn many times); refit with more rows or smaller weights")
            raise ValueError(f"method={method!r} needs out-of-bag rows, but {why}, or use "
                             "method='gaussian'.")
        if calibration.repeated > REPEATED_ROWS_WARNING:
            warnings.warn(
                f"{calibration.repeated:.1%} of the training rows have an exact copy "
                "(same X and y). The conformal interval counts copies as data that new "
                "points repeat as often (exchangeable data, as in Kim et al.); if rows were "
                "duplicated by mistake, new data will not repeat them and the interval will be "
                "too narrow: drop the copies and refit.", UserWarning, stacklevel=caller_stacklevel(),
            )
        score = {"conformal": "absolute", "conformal-studentized": "studentized"}[method]
        lower = np.empty((len(X), fitted.n_targets))
        upper = np.empty_like(lower)
        for rows, low, high in calibration.intervals(
                fitted.batches(X), alpha, score, scale, noise,
                fitted.dtype):
            lower[rows], upper[rows] = low, high
        if np.isinf(upper).any():
            n_rows = calibration.n_rows
            warnings.warn(
                f"The {confidence:.12g} conformal interval is infinite: its bound is the "
                f"ceil({confidence:.12g} * (n + 1))-th of {n_rows} out-of-bag calibration rows, "
                f"which needs at least {int(np.ceil(confidence / (1 - confidence)))} of them. "
                "Use a lower confidence, more training rows or more members.",
                UserWarning, stacklevel=caller_stacklevel(),
            )
        standardizer = fitted.standardizer
        return (self._format(standardizer.inverse_mean(lower)),
                self._format(standardizer.inverse_mean(upper)))

    @staticmethod
    def _check_confidence(confidence):
        if isinstance(confidence, bool) or not isinstance(confidence, Real) or not (
                0 < confidence < 1):
            raise ValueError(
                f"confidence must be a number strictly between 0 and 1 (e.g. 0.95); got "
                f"{confidence!r}."
            )
        return 1.0 - float(confidence)

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R^2 of ``predict(X)``, as ``RegressorMixin.score``, with
        ``y`` and ``sample_weight`` read as ``fit`` reads them (a tensor that requires grad, a
        bfloat16 tensor; text refused, where scikit-learn's score parses ``"1.5"``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        y = numeric_array(y, "y", "a regression target")
        if sample_weight is not None:
            sample_weight = numeric_array(sample_weight, "sample_weight", "non-negative weights")
        return super().score(X, y, sample_weight=sample_weight)

    def sample_y(self, X, n_samples=1, random_state=0):
        """Draw functions from the ensemble and add noise, as ``GaussianProcessRegressor.sample_y``.

        Each draw is one member (its spread scaled by ``epistemic_scale_`` and corrected so that
        draws have the ensemble's ``ddof=1`` variance) plus Gaussian noise of the fitted variance
        at every point, so the draws' mean and standard deviation approach
        ``predict(X, return_std=True)``. Members are picked in balanced rounds: each member
        appears ``n_samples // n_estimators`` times, the remaining draws take distinct members,
        all in random order. Each draw alone is a uniformly random member, as with independent
        picks, but no member is over- or under-represented (stratified sampling): when
        ``n_samples`` is a multiple of ``n_estimators`` the draws' moments carry only the noise's
        sampling error, otherwise the last, partial round adds a little. Unlike a GP's, the draws
        come from a finite ensemble: at most ``n_estimators`` distinct functions, each a network
        fitted to a bootstrap resample.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
        n_samples : int, default=1
            Number of draws.
        random_state : int, RandomState instance or None, default=0
            Seeds the choice of members and the noise (0, as in
            ``GaussianProcessRegressor.sample_y``); None draws fresh OS entropy, never NumPy's
            global generator.

        Returns
        -------
        y_samples : ndarray of shape (n_samples_X, n_samples) or (n_samples_X, n_targets, n_samples)
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
        X = self._validate_predict_input(X)
        n_samples = int(n_samples)  # a NumPy uint8 would overflow the batch arithmetic below
        rng = check_random_state(seed_from(random_state))
        fitted, noise, scale = read_together(self, "_fitted", "_noise", "epistemic_scale_")
        # The output first: a request too large for memory fails here, in NumPy's words, rather
        # than after the member picks (n_samples integers) have filled the memory.
        draws = np.empty((len(X), fitted.n_targets, n_samples))
        members = balanced_picks(fitted.module.n_members, n_samples, rng)
        # Rows per batch so that one batch of draws stays near 4M floats, however many draws.
        batch_rows = max(1, min(fitted.rows, 4_000_000 // (n_samples * fitted.n_targets)))
        for rows, means, variances in fitted.batches(X, batch_rows):
            draws[rows] = draw_functions(means, variances, members, scale, noise, rng)
        draws = fitted.standardizer.inverse_mean(draws.transpose(0, 2, 1)).transpose(0, 2, 1)
        return draws[:, 0, :] if self._y_ndim == 1 else draws

    def __getstate__(self):
        # A copy, taken at once: scikit-learn's returns the live __dict__, which a thread's first
        # read of estimators_ grows while pickle walks it ("dictionary changed size").
        return dict(super().__getstate__())

    # ------------------------------------------------------------------ members as skorch nets
    @property
    def estimators_(self):
        """One fitted skorch ``NeuralNetRegressor`` per member (see the class docstring)."""
        check_is_fitted(self, "ensemble_")
        if "_estimators" not in self.__dict__:
            with cpu_by_default():  # the members' buffers, made from NumPy values
                self.__dict__["_estimators"] = self._member_nets()
        return self.__dict__["_estimators"]

    def _member_nets(self):
        fitted = self._fitted
        return [member_net(fitted.module.member(k, fitted.standardizer, self._y_ndim == 1),
                           self.ensemble_, self.n_features_in_,
                           getattr(self, "feature_names_in_", None))
                for k in range(fitted.module.n_members)]
