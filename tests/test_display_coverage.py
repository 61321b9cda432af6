"""CoverageDisplay draws the coverage that metrics.calibration_curve computes (Agg backend)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.base import BaseEstimator, RegressorMixin  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.validation import check_is_fitted, validate_data  # noqa: E402

from sklearn_rpf import RandomizedPriorRegressor  # noqa: E402
from sklearn_rpf.datasets import make_two_clusters  # noqa: E402
from sklearn_rpf.metrics import calibration_curve  # noqa: E402
from sklearn_rpf.plotting import CoverageDisplay  # noqa: E402

TINY = dict(n_estimators=4, max_epochs=30, hidden_layer_sizes=(16,), random_state=0)
LEVELS = [0.2, 0.5, 0.8, 0.95]


class SymmetricIntervalRegressor(RegressorMixin, BaseEstimator):
    """Predicts the training mean, with interval ``mean ± confidence * width`` (``2 *`` that for
    ``method="wide"``): its coverage at each level is known in closed form."""

    def __init__(self, width=1.0):
        self.width = width

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X, return_std=False):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        mean = np.full(len(X), self.mean_)
        return (mean, np.full(len(X), self.width)) if return_std else mean

    def predict_interval(self, X, confidence=0.95, method="conformal"):
        half = self.width * confidence * {"conformal": 1, "wide": 2}[method]
        mean = self.predict(X)
        return mean - half, mean + half


@pytest.fixture(scope="module")
def data():
    X, y = make_two_clusters(random_state=0)
    X_test, y_test = make_two_clusters(120, random_state=1)
    return X, y, X_test, y_test


@pytest.fixture(scope="module")
def models(data):
    X, y, _, _ = data
    return {"RPF": RandomizedPriorRegressor(**TINY).fit(X, y),
            "GP": GaussianProcessRegressor(alpha=0.01).fit(X, y)}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _legend_labels(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_gaussian_curves_equal_calibration_curve(models, data):
    _, _, X_test, y_test = data
    display = CoverageDisplay.from_estimator(models, X_test, y_test, levels=LEVELS)
    assert len(display.lines_) == 2
    for line, observed, model in zip(display.lines_, display.observed_, models.values(),
                                     strict=True):
        nominal, expected = calibration_curve(y_test, *model.predict(X_test, return_std=True),
                                              levels=LEVELS)
        np.testing.assert_allclose(observed, expected)
        np.testing.assert_allclose(line.get_xdata(), nominal)
        np.testing.assert_allclose(line.get_ydata(), expected)
    np.testing.assert_allclose(display.nominal_, LEVELS)
    np.testing.assert_allclose(display.diagonal_line_.get_xydata(), [[0, 0], [1, 1]])
    assert _legend_labels(display.ax_) == ["perfectly calibrated", "RPF", "GP"]
    assert display.ax_.get_xlabel() == "nominal coverage"


def test_default_levels_and_name(models, data):
    _, _, X_test, y_test = data
    display = CoverageDisplay.from_estimator(models["GP"], X_test, y_test)
    nominal, _ = calibration_curve(y_test, *models["GP"].predict(X_test, return_std=True),
                                   levels=10)
    np.testing.assert_allclose(display.nominal_, nominal)
    assert _legend_labels(display.ax_)[-1] == "GaussianProcessRegressor"


def test_interval_method_uses_predict_interval_at_every_level():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 1)), rng.normal(size=200)
    X_test, y_test = rng.normal(size=(200, 1)), rng.normal(size=200)
    reg = SymmetricIntervalRegressor(width=1.0).fit(X, y)
    residual = np.abs(y_test - reg.mean_)
    for interval_method, factor in ((None, 1), ("wide", 2)):
        display = CoverageDisplay.from_estimator(reg, X_test, y_test, levels=LEVELS,
                                                 method="interval",
                                                 interval_method=interval_method)
        expected = [np.mean(residual <= factor * level) for level in LEVELS]
        np.testing.assert_allclose(display.observed_, [expected])
    assert 0 < expected[0] < expected[-1] < 1  # the check is not trivially 0 or 1


def test_interval_levels_in_any_order_keep_their_coverage():
    # Levels are drawn (and kept in nominal_) from low to high, each with its own coverage:
    # a curve, not a zig-zag back through the levels as given.
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(50, 1)), rng.normal(size=50)
    X_test, y_test = rng.normal(size=(300, 1)), rng.normal(size=300)
    reg = SymmetricIntervalRegressor(width=1.0).fit(X, y)
    levels = [0.9, 0.6, 0.75]
    display = CoverageDisplay.from_estimator(reg, X_test, y_test, levels=levels, method="interval")
    np.testing.assert_allclose(display.nominal_, [0.6, 0.75, 0.9])
    expected = [np.mean(np.abs(y_test - reg.mean_) <= level) for level in (0.6, 0.75, 0.9)]
    np.testing.assert_allclose(display.observed_, [expected])
    np.testing.assert_allclose(display.line_.get_xdata(), [0.6, 0.75, 0.9])
    np.testing.assert_allclose(display.line_.get_ydata(), expected)
    assert expected[0] < expected[1] < expected[2]  # each level keeps its own coverage
    repeated = CoverageDisplay.from_estimator(reg, X_test, y_test, levels=[0.9, 0.6, 0.9],
                                              method="interval")
    np.testing.assert_allclose(repeated.nominal_, [0.6, 0.9, 0.9])
    np.testing.assert_allclose(repeated.observed_, [[expected[0], expected[2], expected[2]]])


def test_gaussian_levels_in_any_order_are_drawn_increasing(models, data):
    X_test, y_test = data[2], data[3]
    display = CoverageDisplay.from_estimator(models["GP"], X_test, y_test,
                                             levels=[0.9, 0.1, 0.5, 0.3])
    nominal, expected = calibration_curve(y_test, *models["GP"].predict(X_test, return_std=True),
                                          levels=[0.1, 0.3, 0.5, 0.9])
    np.testing.assert_array_equal(display.line_.get_xdata(), nominal)
    np.testing.assert_allclose(display.line_.get_ydata(), expected)
    drawn = CoverageDisplay(nominal=[0.9, 0.1], observed=[[0.8, 0.2], [0.7, 0.3]]).plot(
        name=["a", "b"])
    np.testing.assert_array_equal(drawn.observed_, [[0.2, 0.8], [0.3, 0.7]])
    assert drawn.line_ == drawn.lines_ and [line.get_label() for line in drawn.lines_] == ["a", "b"]


def test_interval_method_default_levels_suit_conformal_intervals(data):
    _, _, X_test, y_test = data
    reg = RandomizedPriorRegressor(**TINY).fit(*make_two_clusters(150, random_state=2))
    display = CoverageDisplay.from_estimator(reg, X_test, y_test, method="interval")
    np.testing.assert_allclose(display.nominal_, 0.525 + 0.05 * np.arange(10))
    lower, upper = reg.predict_interval(X_test, confidence=0.975)
    assert display.observed_[0, -1] == np.mean((lower <= y_test) & (y_test <= upper))


def test_an_infinite_interval_covers_everything():
    X, y = make_two_clusters(30, random_state=0)
    reg = RandomizedPriorRegressor(**TINY).fit(X, y)
    with pytest.warns(UserWarning, match="conformal interval is infinite"):
        display = CoverageDisplay.from_estimator(reg, X, y, levels=[0.5, 0.999], method="interval")
    assert display.observed_[0, 1] == 1.0 and display.observed_[0, 0] < 1.0
    y = np.zeros(4)
    display = CoverageDisplay.from_predictions(y, intervals={0.9: (y - np.inf, y + np.inf)})
    assert display.observed_.tolist() == [[1.0]]
    with pytest.raises(ValueError, match="contains NaN"):
        CoverageDisplay.from_predictions(y, intervals={0.9: (y * np.nan, y)})


def test_interval_method_through_a_pipeline(data):
    X, y, X_test, y_test = data
    pipe = make_pipeline(StandardScaler(), SymmetricIntervalRegressor(width=0.8)).fit(X, y)
    display = CoverageDisplay.from_estimator(pipe, X_test, y_test, levels=LEVELS,
                                             method="interval")
    expected = [np.mean(np.abs(y_test - pipe[-1].mean_) <= 0.8 * level) for level in LEVELS]
    np.testing.assert_allclose(display.observed_[0], expected)


def test_interval_method_needs_predict_interval(models, data):
    X, y, X_test, y_test = data
    both = {"double": SymmetricIntervalRegressor().fit(X, y), "GP": models["GP"]}
    with pytest.raises(ValueError, match=r"'GP' \(GaussianProcessRegressor\) does not have"):
        CoverageDisplay.from_estimator(both, X_test, y_test, method="interval")


def test_from_predictions_gaussian_with_weights_and_targets():
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=(50, 2))
    y_mean, y_std = np.zeros((50, 2)), np.c_[np.full(50, 0.5), np.full(50, 2.0)]
    weight = rng.uniform(0, 1, 50)
    display = CoverageDisplay.from_predictions(y_true, y_mean, y_std, levels=LEVELS,
                                               sample_weight=weight, name="toy")
    _, averaged = calibration_curve(y_true, y_mean, y_std, levels=LEVELS, sample_weight=weight)
    np.testing.assert_allclose(display.observed_[0], averaged)
    display = CoverageDisplay.from_predictions(y_true, y_mean, y_std, levels=LEVELS, target=1)
    _, second = calibration_curve(y_true[:, 1], y_mean[:, 1], y_std[:, 1], levels=LEVELS)
    np.testing.assert_allclose(display.observed_[0], second)
    with pytest.raises(ValueError, match=r"target must be an integer in \[0, 1\]"):
        CoverageDisplay.from_predictions(y_true, y_mean, y_std, target=2)


def test_from_predictions_intervals_sorted_by_level():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    intervals = {0.9: (np.full(4, -1.0), np.full(4, 2.5)), 0.5: (np.zeros(4), np.ones(4))}
    display = CoverageDisplay.from_predictions(y, intervals=intervals, sample_weight=[1, 1, 1, 5])
    np.testing.assert_allclose(display.nominal_, [0.5, 0.9])
    np.testing.assert_allclose(display.observed_, [[2 / 8, 3 / 8]])
    np.testing.assert_allclose(display.lines_[0].get_ydata(), [2 / 8, 3 / 8])


def test_several_displays_share_one_axes_and_one_diagonal(models, data):
    _, _, X_test, y_test = data
    fig, ax = plt.subplots()
    first = CoverageDisplay.from_estimator(models["RPF"], X_test, y_test, ax=ax, name="RPF")
    second = CoverageDisplay.from_estimator(models["GP"], X_test, y_test, ax=ax, name="GP")
    assert first.ax_ is second.ax_ is ax and second.figure_ is fig
    assert second.diagonal_line_ is first.diagonal_line_
    assert len(ax.get_lines()) == 3
    assert _legend_labels(ax) == ["perfectly calibrated", "RPF", "GP"]


def test_constructor_and_plot():
    display = CoverageDisplay(nominal=[0.5, 0.9], observed=[[0.4, 0.8], [0.6, 0.95]],
                              names=["a", "b"])
    display.plot(line_kwargs=[{"color": "C1"}, {"color": "C2", "ls": ":"}])
    assert display.lines_[1].get_linestyle() == ":"
    assert display.observed_.shape == (2, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(method="conformal"), "method must be one of"),
        (dict(interval_method="conformal"), 'interval_method only applies with method="interval"'),
        (dict(levels=0), "must be an int in the range \\[1, inf\\)"),
        (dict(levels=[0.0, 0.5]), "open interval"),
        (dict(levels=True), "levels must be a positive int"),
        (dict(levels=0.5), "must be an int in the range"),
        (dict(name="x", estimator={"a": None}), "a dict's keys name its curves"),
        (dict(estimator={}), "empty dict"),
    ],
)
def test_bad_arguments(models, data, kwargs, match):
    _, _, X_test, y_test = data
    estimator = kwargs.pop("estimator", models["GP"])
    with pytest.raises(ValueError, match=match):
        CoverageDisplay.from_estimator(estimator, X_test, y_test, **kwargs)


def test_bad_predictions():
    y = np.zeros(3)
    with pytest.raises(ValueError, match="not both"):
        CoverageDisplay.from_predictions(y, y, np.ones(3), intervals={0.5: (y, y)})
    with pytest.raises(ValueError, match="Pass y_mean and y_std"):
        CoverageDisplay.from_predictions(y, y)
    with pytest.raises(ValueError, match="lower bound exceeds the upper bound"):
        CoverageDisplay.from_predictions(y, intervals={0.5: (y + 1, y)})
    with pytest.raises(ValueError, match="open interval"):
        CoverageDisplay.from_predictions(y, intervals={1.5: (y, y)})
    with pytest.raises(ValueError, match=r"intervals\[0.5\] has 2 rows, expected 3"):
        CoverageDisplay.from_predictions(y, intervals={0.5: (y[:2], y[:2])})
    with pytest.raises(ValueError, match="y_std must be strictly positive"):
        CoverageDisplay.from_predictions(y, y, np.zeros(3))
    with pytest.raises(ValueError, match="names has 1 entries for 2 curve"):
        CoverageDisplay(nominal=[0.5], observed=[[0.5], [0.4]], names=["a"]).plot()
    assert plt.get_fignums() == []  # no empty figure is left behind by a failed call


def test_tensors_that_require_grad_are_read_like_arrays():
    import torch

    rng = np.random.default_rng(0)
    y, mean, std = rng.normal(size=40), rng.normal(size=40) * 0.1, np.full(40, 1.0)
    grad = [torch.tensor(a).requires_grad_(True) for a in (y, mean, std, np.ones(40))]
    from_tensors = CoverageDisplay.from_predictions(*grad[:3], sample_weight=grad[3])
    from_arrays = CoverageDisplay.from_predictions(y, mean, std, sample_weight=np.ones(40))
    np.testing.assert_array_equal(from_tensors.observed, from_arrays.observed)
    bounds = {0.9: (grad[1] - 1.6, grad[1] + 1.6)}
    np.testing.assert_array_equal(
        CoverageDisplay.from_predictions(grad[0], intervals=bounds).observed,
        CoverageDisplay.from_predictions(y, intervals={0.9: (mean - 1.6, mean + 1.6)}).observed)
    plt.close("all")


def test_weights_are_checked_before_any_prediction_and_coverages_within_0_and_1():
    calls = []

    class Counting(RandomizedPriorRegressor):
        def predict_interval(self, X, **kwargs):
            calls.append(1)
            return super().predict_interval(X, **kwargs)

    X, y = make_two_clusters(n_samples=40, random_state=0)
    reg = Counting(n_estimators=4, max_epochs=5, hidden_layer_sizes=(8,), random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(40,\)"):
        CoverageDisplay.from_estimator(reg, X, y, method="interval", sample_weight=np.ones(5))
    assert not calls  # (every level's interval was computed before the length error)
    with pytest.raises(ValueError, match="observed coverages must lie between 0 and 1"):
        CoverageDisplay(nominal=[0.5, 0.9], observed=[1.4, -3.0]).plot()
    plt.close("all")


def test_from_predictions_refuses_numeric_text():
    y = pd.Series(["0.0", "1.0", "2.0"])
    with pytest.raises(ValueError, match="must be numeric; got text"):
        CoverageDisplay.from_predictions(y, np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="sample_weight must be numeric; got text"):
        CoverageDisplay.from_predictions(np.zeros(3), np.zeros(3), np.ones(3),
                                         sample_weight=pd.Series(["1", "1", "2"]))
