"""One member of a fitted ensemble as a skorch regressor (``RandomizedPriorRegressor.estimators_``).

A member net predicts like the ensemble's members (its module holds the standardisation and the
frozen prior), checks its inputs in the ensemble's words, and can be trained further on its own.
"""

import numpy as np
import torch
from sklearn.utils import check_array
from sklearn.utils.validation import _check_feature_names
from skorch import NeuralNetRegressor
from skorch.utils import is_dataset, to_tensor
from torch import nn

from .._arrays import check_numeric, check_numeric_features, untracked
from .._devices import cpu_by_default
from ._training import CopiedInMemory, weight_decay_kwargs


class MemberNet(CopiedInMemory, NeuralNetRegressor):
    """One member as a skorch regressor, whose inputs are checked like the ensemble's: a list,
    a DataFrame or a tensor is read as an array; NaN, infinity, another number of features than
    the ensemble's or, for an ensemble fitted on a DataFrame, other column names (a silent
    answer from the wrong columns before) is a clear error. A target to train it further on is
    checked too: numbers, finite, one column per target of the ensemble. A clone (unfitted, from
    its parameters) checks all but the width and the names."""

    n_features_expected_ = None  # set on the members of a fitted ensemble
    # Members built before they kept the ensemble's feature names (pickled with a model) check
    # none: without feature_names_in_ scikit-learn's check would warn on every DataFrame.
    checks_feature_names_ = False

    def get_loss(self, y_pred, y_true, *args, **kwargs):
        # A single-target member predicts shape (n,), like the ensemble, while skorch wants y as
        # (n, 1): MSELoss would broadcast the two into an (n, n) matrix of every pair's error.
        y_true = to_tensor(y_true, device=self.device)
        if y_true.shape != y_pred.shape and y_true.numel() == y_pred.numel():
            y_true = y_true.reshape(y_pred.shape)
        return super().get_loss(y_pred, y_true, *args, **kwargs)

    def fit(self, X, y=None, **fit_params):
        with cpu_by_default():  # skorch makes some tensors without a device
            return super().fit(X, y, **fit_params)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        with cpu_by_default():
            return super().partial_fit(X, y, classes=classes, **fit_params)

    def predict(self, X):
        with cpu_by_default():
            out = super().predict(X)
        finite = np.isfinite(out.reshape(len(out), -1)).all(axis=1)
        if not finite.all():  # as the ensemble's predict says, not a silent NaN
            raise ValueError(
                f"This member returned NaN or infinity for row {int(np.argmin(finite))} of X. "
                "The inputs may be too far from the training data, or the target's scale too "
                "large, for the network's precision (a member predicts in the target's units: "
                "float32 ends at 3.4e38); try dtype='float64' in the regressor."
            )
        return out.astype(np.float64, copy=False)  # float64 like the ensemble (exact widening)

    def get_dataset(self, X, y=None):
        if not is_dataset(X):
            if self.checks_feature_names_:  # scikit-learn's check and words
                _check_feature_names(self, X, reset=False)
            X = check_array(check_numeric_features(untracked(X)),
                            dtype=[np.float64, np.float32], input_name="X")
            if not X.flags.writeable:  # pandas' copy-on-write view: torch warns on read-only data
                X = X.copy()
            expected = self.n_features_expected_
            if expected is not None and X.shape[1] != expected:
                raise ValueError(f"X has {X.shape[1]} features, but this member is expecting "
                                 f"{expected} features as input.")
            if y is not None:  # before training starts: a failed call changes nothing
                y = self._checked_target(y)
                self._check_trains_on_squared_error(X)
        return super().get_dataset(X, y)

    def _check_trains_on_squared_error(self, X):
        """A heteroscedastic member (mean and variance columns) cannot learn from a squared
        error; its output width, from one row in eval mode (no dropout draw), says which."""
        module = getattr(self, "module_", None)
        n_targets = getattr(module, "n_targets", None)
        if n_targets is None or len(X) == 0:
            return
        training = module.training
        try:
            module.eval()
            with torch.no_grad():
                width = module(torch.as_tensor(X[:1], device=self.device)).shape[-1]
        finally:
            module.train(training)
        if width == 2 * n_targets:
            raise ValueError(
                "This member predicts a mean and a noise variance per target (the regressor's "
                "loss='gaussian_nll'); it cannot be trained further on its own with a squared "
                "error. Train the ensemble instead (its partial_fit)."
            )

    def _checked_target(self, y):
        """``y`` as the ensemble's fit reads it (text, NaN, infinity refused; float128 read as
        float64, which torch can hold), with the member's number of targets: before, a NaN
        target silently broke the weights and a second column broadcast in the loss."""
        y = check_array(check_numeric(untracked(y), "y", "a regression target"),
                        ensure_2d=False, dtype=[np.float64, np.float32], input_name="y")
        n_targets = getattr(getattr(self, "module_", None), "n_targets", None)
        columns = 1 if y.ndim == 1 else y.shape[1] if y.ndim == 2 else None
        if n_targets is not None and columns != n_targets:
            shapes = "(n_samples,)" if n_targets == 1 else f"(n_samples, {n_targets})"
            raise ValueError(f"y has shape {y.shape}, but this member predicts {n_targets} "
                             f"target(s): expected shape {shapes}.")
        return y


def member_net(module, ensemble_net, n_features=None, feature_names=None):
    """One member module as an initialised skorch ``NeuralNetRegressor``, set up like the
    ensemble's net (optimizer, learning rate, batch size, device), so it can be trained further;
    it expects ``n_features`` features, named ``feature_names`` (None: the ensemble saw none)."""
    params = ensemble_net.get_params()
    net = MemberNet(
        module=module, criterion=nn.MSELoss, train_split=None, optimizer=params["optimizer"],
        lr=params["lr"],
        **weight_decay_kwargs(params["optimizer"], params.get("optimizer__weight_decay", 0.0)),
        max_epochs=params["max_epochs"], batch_size=params["batch_size"],
        device=params["device"], verbose=params["verbose"],
        # DataLoaders draw a base seed (and, shuffling, the order) from torch's global generator
        # unless given their own: these keep the caller's generator untouched.
        iterator_train__generator=torch.Generator(), iterator_valid__generator=torch.Generator(),
    )
    net.n_features_expected_ = n_features
    net.checks_feature_names_ = True
    if feature_names is not None:
        net.feature_names_in_ = np.array(feature_names, dtype=object)  # the member's own copy
    net.initialize()
    return net
