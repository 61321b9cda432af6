"""Scorers for ``GridSearchCV(scoring=...)`` that call ``predict(X, return_std=True)``."""

import inspect

import numpy as np
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.metadata_routing import UNCHANGED, MetadataRequest

from ._calibration import miscalibration_area
from ._gaussian import crps_gaussian, gaussian_nll, interval_coverage, interval_width

# name -> (metric, sign) where sign makes greater better, as sklearn scorers do.
_NAMED_SCORERS = {
    "neg_gaussian_nll": (gaussian_nll, -1),
    "neg_crps": (crps_gaussian, -1),
    "neg_miscalibration_area": (miscalibration_area, -1),
    "neg_interval_width": (interval_width, -1),
    "interval_coverage": (interval_coverage, 1),
}


class _GaussianScorer:
    """Callable ``scorer(estimator, X, y_true, sample_weight=None)``; see make_gaussian_scorer.

    ``sklearn.metrics.make_scorer`` cannot pass ``return_std=True`` to ``predict``,
    hence this small class instead of a ``_Scorer`` subclass.
    """

    def __init__(self, score_func, sign, kwargs, name=None):
        self._score_func = score_func
        self._sign = sign
        self._kwargs = kwargs
        self._name = name
        self._sample_weight_request = None

    def __repr__(self):
        if self._name is not None:
            head = repr(self._name)
        else:
            head = getattr(self._score_func, "__name__", repr(self._score_func))
            head += "" if self._sign > 0 else ", greater_is_better=False"
        extra = "".join(f", {key}={value!r}" for key, value in self._kwargs.items())
        return f"make_gaussian_scorer({head}{extra})"

    def __call__(self, estimator, X, y_true, sample_weight=None):
        try:
            prediction = estimator.predict(X, return_std=True)
        except TypeError as exc:
            if "return_std" not in str(exc):
                raise
            raise TypeError(
                f"{type(estimator).__name__}.predict does not accept return_std=True; "
                "Gaussian scorers need an estimator whose predict(X, return_std=True) "
                "returns (mean, std)."
            ) from exc
        if not isinstance(prediction, tuple) or len(prediction) != 2:
            raise TypeError(
                f"{type(estimator).__name__}.predict(X, return_std=True) must return a "
                f"(mean, std) tuple; got {type(prediction).__name__}."
            )
        y_mean, y_std = prediction
        score = self._score_func(y_true, y_mean, y_std, sample_weight=sample_weight, **self._kwargs)
        return self._sign * score

    # Without metadata routing, GridSearchCV forwards a fit's sample_weight to
    # scorers that say they accept it (sklearn's private hook, kept in sync by name).
    def _accept_sample_weight(self):
        return True

    def set_score_request(self, *, sample_weight=UNCHANGED):
        """Request ``sample_weight`` when metadata routing is enabled.

        Parameters
        ----------
        sample_weight : bool, None or str, default=sklearn.utils.metadata_routing.UNCHANGED
            ``True`` to receive ``sample_weight``, ``False`` not to, ``None`` to
            raise if it is passed, a string to receive it under that alias.

        Returns
        -------
        self : object
        """
        if sample_weight is not UNCHANGED:
            self._sample_weight_request = sample_weight
        return self

    def get_metadata_routing(self):
        """Metadata this scorer requests (``sample_weight`` for ``score``)."""
        request = MetadataRequest(owner=self)
        request.score.add_request(param="sample_weight", alias=self._sample_weight_request)
        return request


def _check_metric_kwargs(function, kwargs, name):
    """Keywords the metric does not take fail when the scorer is made (a search would otherwise
    score NaN in every fold, with a warning each)."""
    if "sample_weight" in kwargs:
        raise TypeError("sample_weight is not a keyword of the scorer: pass it when scoring, "
                        "scorer(estimator, X, y, sample_weight=w), or let GridSearchCV route it.")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return
    try:
        signature.bind(None, None, None, **kwargs)
    except TypeError as exc:
        raise TypeError(f"The metric {name} does not take these keywords {sorted(kwargs)}: "
                        f"{exc}.") from None


def make_gaussian_scorer(metric, *, greater_is_better=None, **kwargs):
    """Make a scorer that evaluates ``estimator.predict(X, return_std=True)``.

    The scorer has sklearn's signature ``scorer(estimator, X, y_true,
    sample_weight=None)``, greater is better, and works in ``GridSearchCV``,
    ``cross_validate`` (also in a ``scoring`` dict) and with a ``Pipeline``, whose
    ``predict`` forwards ``return_std`` to its last step. ``sample_weight`` is
    passed on when given: automatically by ``GridSearchCV.fit(..., sample_weight=w)``,
    or with metadata routing after ``scorer.set_score_request(sample_weight=True)``.
    With routing enabled, a Pipeline's final step also needs
    ``set_predict_request(return_std=True)``.

    Parameters
    ----------
    metric : str or callable
        A name: ``"neg_gaussian_nll"``, ``"neg_crps"``, ``"neg_miscalibration_area"``,
        ``"neg_interval_width"`` or ``"interval_coverage"`` (for reporting; it is
        not a score to maximise). Or a function
        ``metric(y_true, y_mean, y_std, sample_weight=None, **kwargs)``.
    greater_is_better : bool, default=None
        Only for a callable ``metric`` (then ``None`` means ``True``); set to
        ``False`` for a loss, whose sign the scorer flips.
    **kwargs
        Passed to the metric, e.g. ``level=0.9``.

    Returns
    -------
    scorer : callable

    Examples
    --------
    >>> from sklearn.linear_model import BayesianRidge
    >>> from sklearn.model_selection import cross_validate
    >>> from sklearn_rpf.metrics import make_gaussian_scorer, neg_crps_scorer
    >>> X, y = [[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]], [0.1, 0.9, 2.2, 2.8, 4.1, 5.0]
    >>> scoring = {"nll": make_gaussian_scorer("neg_gaussian_nll"), "crps": neg_crps_scorer}
    >>> result = cross_validate(BayesianRidge(), X, y, cv=2, scoring=scoring)
    >>> sorted(key for key in result if key.startswith("test_"))
    ['test_crps', 'test_nll']
    """
    if isinstance(metric, str):
        if metric not in _NAMED_SCORERS:
            raise ValueError(
                f"Unknown Gaussian scorer {metric!r}; expected one of "
                f"{sorted(_NAMED_SCORERS)} or a callable."
            )
        if greater_is_better is not None:
            raise ValueError(f"greater_is_better is fixed for the named scorer {metric!r}.")
        score_func, sign = _NAMED_SCORERS[metric]
        _check_metric_kwargs(score_func, kwargs, metric)
        # Our own metrics validate their parameters before reading the data: tried on three rows,
        # a bad level fails here, not as a NaN score and a warning in every fold of a search
        # (errors that depend on the data, such as weights for several outputs, are left to it).
        try:
            score_func([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [1.0, 1.0, 1.0], **kwargs)
        except InvalidParameterError:
            raise
        except (ValueError, TypeError):
            pass
        return _GaussianScorer(score_func, sign, kwargs, name=metric)
    if not callable(metric):
        raise TypeError(f"metric must be a scorer name or a callable; got {metric!r}.")
    _check_metric_kwargs(metric, kwargs, getattr(metric, "__name__", repr(metric)))
    if greater_is_better is not None and not isinstance(greater_is_better, bool | np.bool_):
        raise ValueError(f"greater_is_better must be True, False or None; got "
                         f"{greater_is_better!r}.")
    sign = -1 if greater_is_better is not None and not greater_is_better else 1
    return _GaussianScorer(metric, sign, kwargs)
