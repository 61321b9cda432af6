"""95% prediction intervals of the RPF estimator, three ways, for the UCI benchmark (issue 11).

- Gaussian: ``mean ± z std`` from ``predict(return_std=True)``;
- conformal: ``RandomizedPriorRegressor.predict_interval(X, confidence, method="conformal")``,
  jackknife+-after-bootstrap from the out-of-bag rows of the one fit (no refit). Estimators
  without ``predict_interval`` (before issue 11 lands) give a row marked "skipped", not a crash;
- MAPIE's ``JackknifeAfterBootstrapRegressor`` around the same pipeline: it refits the whole
  estimator on ``resamplings`` bootstrap samples plus once on all rows, so it costs about
  ``resamplings + 1`` fits. MAPIE 1.6.0 installs in the main environment next to scikit-learn
  1.9.1 without changing any package (``pip install --dry-run -c constraints.txt mapie``), so it
  is in the ``bench`` extra. The J+aB paper (Kim, Xu & Barber, NeurIPS 2020) uses about 20-40
  resamples; 20 is the default here (``--mapie-resamplings``), to keep the run affordable.

Each gives a record with coverage and mean width on the test rows and the seconds it took to
fit and to predict. The Gaussian and conformal predict times, whose ratio is the interval's extra
cost, are medians of warm, alternating calls (``warm_predict_times``); MAPIE's is its one call.
"""

import time
import warnings

import numpy as np
from scipy.stats import norm

CONFIDENCE = 0.95
DEFAULT_MAPIE_RESAMPLINGS = 20
# Timed calls of each of predict and predict_interval (after one untimed call each).
WARM_ROUNDS = 5
INTERVALS = {
    "gaussian": "RPF, Gaussian (mean ± 1.96 std)",
    "conformal": "RPF, conformal (predict_interval, J+aB from out-of-bag rows)",
    "mapie_jab": "MAPIE J+aB around RPF",
}


def interval_record(interval, y_test, lower, upper, fit_time, predict_time):
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    return {
        "interval": interval,
        "coverage": float(np.mean((y_test >= lower) & (y_test <= upper))),
        "width": float(np.mean(upper - lower)),
        "fit_time": fit_time, "predict_time": predict_time, "error": "",
    }


def failed_record(interval, error):
    return {"interval": interval, "coverage": np.nan, "width": np.nan, "fit_time": np.nan,
            "predict_time": np.nan, "error": error}


def gaussian_interval(y_test, mean, std, fit_time, predict_time):
    half = norm.ppf(0.5 + CONFIDENCE / 2) * std
    return interval_record("gaussian", y_test, mean - half, mean + half, fit_time, predict_time)


def conformal_bounds(pipeline, X_test):
    return pipeline[-1].predict_interval(pipeline[:-1].transform(X_test), confidence=CONFIDENCE,
                                         method="conformal")


def conformal_interval(pipeline, X_test, y_test, fit_time, predict_time=None):
    """The estimator's own conformal interval, or a "skipped" record if it has none.

    ``predict_time``: seconds to record (e.g. from :func:`warm_predict_times`); by default this
    one call is timed.
    """
    regressor = pipeline[-1]
    if not hasattr(regressor, "predict_interval"):
        return failed_record(
            "conformal", f"skipped: {type(regressor).__name__} has no predict_interval in this "
            "version (issue 11)")
    try:
        start = time.perf_counter()
        lower, upper = conformal_bounds(pipeline, X_test)
        elapsed = time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001 - a failed interval must not lose the run
        return failed_record("conformal", f"{type(exc).__name__}: {exc}")
    return interval_record("conformal", y_test, lower, upper, fit_time,
                           elapsed if predict_time is None else predict_time)


def warm_predict_times(pipeline, X_test, rounds=WARM_ROUNDS):
    """Median seconds of ``predict(X, return_std=True)`` and of the conformal ``predict_interval``
    on a fitted pipeline, for the extra cost of the interval: each called once untimed first (the
    first call after fit pays one-off costs), then alternately, so that a slow spell of the machine
    hits both. The conformal time is NaN where the estimator has no ``predict_interval``."""
    calls = {"gaussian": lambda: pipeline.predict(X_test, return_std=True)}
    if hasattr(pipeline[-1], "predict_interval"):
        calls["conformal"] = lambda: conformal_bounds(pipeline, X_test)
    times = {name: [] for name in calls}
    for call in calls.values():
        call()
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return (float(np.median(times["gaussian"])),
            float(np.median(times["conformal"])) if "conformal" in times else np.nan)


def mapie_interval(estimator, X_train, y_train, X_test, y_test, resamplings, seed):
    """MAPIE's jackknife+-after-bootstrap around ``estimator`` (refitted by MAPIE)."""
    try:
        from mapie.regression import JackknifeAfterBootstrapRegressor
    except ImportError:
        return failed_record("mapie_jab", "skipped: MAPIE is not installed (pip install -e '.[bench]')")
    mapie = JackknifeAfterBootstrapRegressor(
        estimator, confidence_level=CONFIDENCE, method="plus", resampling=resamplings,
        aggregation_method="mean", n_jobs=1, random_state=seed,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            mapie.fit_conformalize(X_train, y_train)
            fit_time = time.perf_counter() - start
            start = time.perf_counter()
            _, bounds = mapie.predict_interval(X_test)
            predict_time = time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001
        return failed_record("mapie_jab", f"{type(exc).__name__}: {exc}")
    return interval_record("mapie_jab", y_test, bounds[:, 0, 0], bounds[:, 1, 0], fit_time,
                           predict_time)


def mapie_note(resamplings, splits_run):
    """How MAPIE ran, for the record (``splits_run``: data set -> number of splits)."""
    return (f"`JackknifeAfterBootstrapRegressor(<the RPF pipeline>, confidence_level=0.95, "
            f"method='plus', resampling={resamplings}, aggregation_method='mean')`, so "
            f"{resamplings + 1} RPF fits per split; splits run: "
            + ", ".join(f"{d} {c}" for d, c in splits_run.items()))
