"""Out-of-distribution benchmark (issue 10, item 2): does the prior earn its place away from the data?

For each shared UCI set, "gap" splits (the middle third of the rows along one input feature held
out) and "extrapolation" splits (the bottom and top sixths held out), one per feature, as in Foong
et al., "'In-Between' Uncertainty in Bayesian Neural Networks" (2019); of the remaining rows a
seeded random 10% is an in-distribution test set. How ties and few-valued features are handled:
``benchmarks/_shift_splits.py`` (tie groups are never cut; a feature whose held-out share falls
outside [10%, 50%] is skipped and listed).

Methods, on the same split side by side:

- ``rpf``: ``make_pipeline(StandardScaler(), RandomizedPriorRegressor(random_state=feature))``,
  its defaults (``--rpf-params`` overrides them, for both RPF methods);
- ``bootstrap``: the same with ``prior_scale=0`` (the bootstrap ensemble, no prior);
- ``ngboost``: NGBoost 0.6 (500 trees, Normal) in the peers' environment (``benchmarks/peers.py``;
  left out, with a message, when ``.venv-peers`` is missing);
- ``gp``: scikit-learn's ``GaussianProcessRegressor``, constant x ARD RBF + white noise,
  ``normalize_y``, at most 2,000 training rows, as in ``benchmarks/uci.py``.

Reported per split (``shift_raw.csv``) and as means ± standard errors over features (``shift.md``):
test NLL and 95% coverage on the held-out OOD rows, NLL on the in-distribution test rows, and
the AUROC (``sklearn.metrics.roc_auc_score``) of the EPISTEMIC std for telling OOD rows (label 1)
from in-distribution test rows (label 0): ``predict(..., epistemic=True)`` for the RPF methods,
the std of the GP's latent function (its predictive std without the fitted white noise, see
``benchmarks._common.gp_latent_std``). NGBoost has no epistemic part: its epistemic AUROC is n/a,
and the AUROC of the TOTAL std is in a column of its own for every method. The summary says how
RPF fares against the bootstrap ensemble on the issue-10 targets (NLL better on at least 4 of 5
sets by at least 0.05 nats on average; epistemic AUROC higher on at least 4 of 5).

Full run, as ``make benchmarks`` launches it::

    python -m benchmarks.shift --n-jobs 2 --figure docs/images/shift.png --readme README.md

Small runs::

    python -m benchmarks.shift --datasets yacht --features 2 --methods rpf bootstrap \\
        --rpf-params '{"n_estimators": 3, "max_epochs": 20}'
    python -m benchmarks.shift --datasets energy concrete --kinds gap --resume
    # every method fitted to log(y) (a positive target spanning orders of magnitude)
    python -m benchmarks.shift --datasets yacht --log-target --out benchmarks/results/shift_log

Outputs in ``--out`` (default ``benchmarks/results/shift``): ``shift.md``, ``shift.csv``
(the summary), ``shift_raw.csv`` (one row per split and method), ``runs.jsonl`` (the resumable
record); the figure (``--figure``, default ``<out>/shift.png``); with ``--readme``, the block
between ``<!-- shift:start -->`` and ``<!-- shift:end -->`` (``--readme-block`` names another).
"""

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

from . import _readme, _shift_report, peers
from ._common import (
    DEFAULT_GP_MAX_ROWS,
    ResultCache,
    check_n_jobs,
    check_rpf_params,
    gp_latent_std,
    gp_rows,
    make_gp,
    make_rpf,
    one_thread,
    ordered_frame,
    parse_counts,
    parse_json_params,
    resolve_inputs,
    rpf_cache_settings,
    run_notes,
    run_tasks,
    words,
)
from ._shift_splits import KINDS, make_split, make_splits
from ._uci_data import DATASETS, known_datasets, load_dataset

METHODS = {
    "rpf": "RPF (defaults)",
    "bootstrap": "Bootstrap ensemble (prior_scale=0)",
    "ngboost": "NGBoost (Normal)",
    "gp": "GP (ARD)",
}
METRICS = ("nll_ood", "coverage_ood", "rmse_ood", "nll_id", "coverage_id", "rmse_id",
           "auroc_epistemic", "auroc_total", "fit_time", "predict_time")
COLUMNS = ["dataset", "kind", "feature", "method", "label", "n_train", "n_ood", "n_id", "ood_share",
           *METRICS, "fit_warnings", "error"]
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "shift"
DEFAULT_NGBOOST_BATCH = 6
# Rough seconds per fit on one core, per training row, to start the longest tasks first.
_COST = {"rpf": 2.3e-3, "bootstrap": 2.3e-3, "ngboost": 0.02, "gp": 0.08}


# ---------------------------------------------------------------------------- scoring
def shift_scores(y_ood, y_id, mean, std, epistemic, log_target=False):
    """Scores on the OOD rows and in-distribution rows (stacked in this order in ``mean``...).

    ``log_target``: ``y_*``, ``mean`` and ``std`` are on the log scale of a positive target; the
    NLL is then the log-normal one, in the target's units (plus the mean of ``log y``), the
    coverage that of ``exp`` of the interval (the same rows), the RMSE in log units.
    """
    from sklearn.metrics import roc_auc_score

    from sklearn_rpf.metrics import gaussian_nll, interval_coverage

    n = len(y_ood)
    is_ood = np.r_[np.ones(n), np.zeros(len(y_id))]
    parts = {"ood": (y_ood, slice(0, n)), "id": (y_id, slice(n, None))}
    scores = {}
    for name, (y, rows) in parts.items():
        scores[f"nll_{name}"] = float(gaussian_nll(y, mean[rows], std[rows])
                                      + (np.mean(y) if log_target else 0.0))
        scores[f"coverage_{name}"] = float(interval_coverage(y, mean[rows], std[rows], level=0.95))
        scores[f"rmse_{name}"] = float(np.sqrt(np.mean((y - mean[rows]) ** 2)))
    scores["auroc_total"] = float(roc_auc_score(is_ood, std))
    scores["auroc_epistemic"] = (np.nan if epistemic is None
                                 else float(roc_auc_score(is_ood, epistemic)))
    return scores


def _evaluation_rows(X, y, split):
    rows = np.r_[split.ood, split.id_test]
    return X[rows], y[split.ood], y[split.id_test]


def _row(split, method, n_train, settings):
    return {"key": unit_key(split.dataset, split.kind, split.feature, method, settings),
            "dataset": split.dataset, "kind": split.kind, "feature": split.feature,
            "method": method, "label": METHODS[method], "n_train": n_train,
            "n_ood": len(split.ood), "n_id": len(split.id_test), "ood_share": split.ood_share}


def _failed(row, exc):
    return {**row, **dict.fromkeys(METRICS, np.nan), "fit_warnings": 0,
            "error": f"{type(exc).__name__}: {exc}"}


def unit_key(dataset, kind, feature, method, settings):
    relevant = {"gp": settings["gp_max_rows"], "ngboost": settings["ngboost_params"]}.get(
        method, rpf_cache_settings(settings["rpf_params"]))
    if settings.get("log_target"):  # only then: earlier records keep their keys
        relevant = {"settings": relevant, "log_target": True}
    return ResultCache.key(benchmark="shift", dataset=dataset, kind=kind, feature=feature,
                           method=method, settings=relevant)


# ---------------------------------------------------------------------------- tasks
def _load(data_dir, dataset, settings):
    """``X`` and the target, on the log scale with ``--log-target``."""
    X, y = load_dataset(data_dir, dataset)
    return X, (np.log(y) if settings.get("log_target") else y)


def run_in_process(data_dir, dataset, kind, feature, method, settings):
    """One split and one method of those that run in this environment: a one-row list."""
    X, y = _load(data_dir, dataset, settings)
    split = make_split(X, dataset, kind, feature)
    train = split.train
    if method == "gp":
        train = train[gp_rows(len(train), settings["gp_max_rows"], feature)]
    row = _row(split, method, len(train), settings)
    X_eval, y_ood, y_id = _evaluation_rows(X, y, split)
    try:
        if method == "gp":
            estimator = make_gp(X.shape[1], feature)
        else:
            estimator = make_rpf(feature, settings["rpf_params"], prior=method == "rpf")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            estimator.fit(X[train], y[train])
            fit_time = time.perf_counter() - start
        start = time.perf_counter()
        mean, std = estimator.predict(X_eval, return_std=True)
        predict_time = time.perf_counter() - start
        if method == "gp":
            epistemic = gp_latent_std(estimator, y[train], X_eval)
        else:
            epistemic = estimator.predict(X_eval, return_std=True, epistemic=True)[1]
        scores = shift_scores(y_ood, y_id, mean, std, epistemic, settings.get("log_target"))
    except Exception as exc:  # noqa: BLE001 - one failed fit must not lose a long run
        return [_failed(row, exc)]
    return [{**row, **scores, "fit_time": fit_time, "predict_time": predict_time,
             "fit_warnings": len(caught), "error": ""}]


def run_ngboost(data_dir, dataset, kind, features, settings):
    """NGBoost on several features' splits of one (dataset, kind), in one peers subprocess."""
    X, y = _load(data_dir, dataset, settings)
    splits = [make_split(X, dataset, kind, feature) for feature in features]
    rows = [_row(split, "ngboost", len(split.train), settings) for split in splits]
    jobs = [{"X_train": X[s.train], "y_train": y[s.train], "X_test": _evaluation_rows(X, y, s)[0],
             "seed": s.feature} for s in splits]
    try:
        outputs = peers.ngboost_fit_predict(settings["peers_python"], jobs,
                                            settings["ngboost_params"])
    except Exception as exc:  # noqa: BLE001
        return [_failed(row, exc) for row in rows]
    results = []
    for row, split, out in zip(rows, splits, outputs, strict=True):
        _, y_ood, y_id = _evaluation_rows(X, y, split)
        scores = shift_scores(y_ood, y_id, out["mean"], out["std"], None,
                              settings.get("log_target"))
        results.append({**row, **scores, "fit_time": out["fit_time"],
                        "predict_time": out["predict_time"], "fit_warnings": 0, "error": ""})
    return results


def run_task(data_dir, dataset, kind, features, method, settings):
    """One task, on one thread (so are NGBoost's subprocesses)."""
    if method == "ngboost":
        return run_ngboost(data_dir, dataset, kind, features, settings)
    with one_thread():
        return run_in_process(data_dir, dataset, kind, features[0], method, settings)


def plan_tasks(splits, methods, gp_features, settings, cache):
    """``(dataset, kind, features, method)`` tasks still to run, the longest first."""
    tasks, costs = [], []
    for (dataset, kind), usable in splits.items():
        for method in methods:
            chosen = usable[:gp_features.get(dataset, len(usable))] if method == "gp" else usable
            todo = [s for s in chosen
                    if cache.get(unit_key(dataset, kind, s.feature, method, settings)) is None]
            size = settings["ngboost_batch"] if method == "ngboost" else 1
            for i in range(0, len(todo), size):
                group = todo[i:i + size]
                rows = sum(min(len(s.train), settings["gp_max_rows"]) if method == "gp"
                           else len(s.train) for s in group)
                tasks.append((dataset, kind, [s.feature for s in group], method))
                costs.append(_COST[method] * rows)
    order = np.argsort(costs, kind="stable")[::-1]
    return [tasks[i] for i in order]


# ---------------------------------------------------------------------------- command line
def _features(values, dataset, n_features):
    """A count (the first N features) or explicit feature indices."""
    chosen = [int(word) for word in words(values)]
    if len(chosen) == 1:
        return list(range(min(chosen[0], n_features)))
    outside = sorted(f for f in chosen if not 0 <= f < n_features)
    if outside:
        raise SystemExit(f"--features {outside}: {dataset} has features 0 to {n_features - 1}.")
    return sorted(set(chosen))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder of the UCI sets (default: $SKLEARN_RPF_UCI or <repo>/../shared/uci)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS),
                        help=f"data sets to run (default: all of {', '.join(DATASETS)})")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), help="gap and/or extrapolation")
    parser.add_argument("--features", nargs="+", default=["100"],
                        help="a count (the first N features of each set) or feature indices (default: all)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS),
                        help=f"subset of {', '.join(METHODS)} (default: all)")
    parser.add_argument("--gp-features", default="all",
                        help="run the GP on the first N usable features of each (set, kind) only: N, "
                             "NAME=N,... or 'all' (default: %(default)s)")
    parser.add_argument("--gp-max-rows", type=int, default=DEFAULT_GP_MAX_ROWS,
                        help="train the GP on a random subset of at most this many rows (default: %(default)s)")
    parser.add_argument("--ngboost-params", default="{}",
                        help="JSON object overriding NGBRegressor parameters (default: 500 trees)")
    parser.add_argument("--ngboost-batch", type=int, default=DEFAULT_NGBOOST_BATCH,
                        help="NGBoost fits per peers subprocess (default: %(default)s)")
    parser.add_argument("--peers-python", default=None,
                        help=f"python of the peers' environment (default: ${peers.ENV_VAR} or "
                             ".venv-peers/bin/python)")
    parser.add_argument("--rpf-params", default="{}",
                        help="JSON object overriding RandomizedPriorRegressor parameters of both RPF methods")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="parallel tasks (joblib processes, one thread each) (default: 1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder (default: benchmarks/results/shift)")
    parser.add_argument("--figure", type=Path, default=None,
                        help="where the figure goes (default: <out>/shift.png)")
    parser.add_argument("--readme", type=Path, default=None,
                        help="also write the block between <!-- shift:start --> and <!-- shift:end --> of this file")
    parser.add_argument("--log-target", action="store_true",
                        help="fit every method to log(y) (positive targets only): NLL in the "
                             "target's units (log-normal), RMSE in log units")
    parser.add_argument("--readme-block", default="shift",
                        help="the name of that block (default: %(default)s)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the finished results in <out>/runs.jsonl (same options, same code)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    sets = known_datasets(args.data_dir)
    for option, known in (("datasets", sets), ("kinds", KINDS), ("methods", METHODS)):
        chosen = words(getattr(args, option))
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            parser.error(f"unknown {option} {unknown}; expected some of {list(known)}")
        setattr(args, option, list(dict.fromkeys(chosen)))
    try:
        features = [int(word) for word in words(args.features)]
    except ValueError:
        features = []
    if not features or (len(features) == 1 and features[0] < 1):
        parser.error(f"--features {' '.join(args.features)}: expected a positive count or "
                     "feature indices")
    args.rpf_params = parse_json_params(args.rpf_params, "--rpf-params")
    try:  # a misspelt parameter or a bad value fails here, not in every fit of a long run
        check_rpf_params(args.rpf_params)
    except (TypeError, ValueError) as exc:
        parser.error(f"--rpf-params: {exc}")
    args.ngboost_params = parse_json_params(args.ngboost_params, "--ngboost-params")
    args.gp_features = parse_counts(args.gp_features, args.datasets, "--gp-features", sets)
    for option in ("gp_max_rows", "ngboost_batch"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be a positive integer")
    check_n_jobs(parser, args.n_jobs)
    if args.readme is not None:
        _readme.check_block(args.readme, args.readme_block)  # before the run, not after it
    return args


def main(argv=None):
    """Run the benchmark; return the per-split results (one row per split and method)."""
    from joblib import effective_n_jobs

    args = parse_args(argv)
    data_dir, ngboost_note = resolve_inputs(args, "the feature index")
    splits, skipped = {}, []
    for dataset in args.datasets:
        X, y = load_dataset(data_dir, dataset)
        if args.log_target and y.min() <= 0:
            raise SystemExit(f"--log-target: {dataset} has targets <= 0 (smallest {y.min():g}).")
        for split in make_splits(X, dataset, args.kinds, _features(args.features, dataset, X.shape[1])):
            if split.skipped:
                skipped.append(split)
            else:
                splits.setdefault((dataset, split.kind), []).append(split)
    n_jobs = effective_n_jobs(args.n_jobs)
    settings = {"rpf_params": args.rpf_params, "gp_max_rows": args.gp_max_rows,
                "ngboost_params": args.ngboost_params, "ngboost_batch": args.ngboost_batch,
                "peers_python": args.peers_python, "log_target": args.log_target}
    cache = ResultCache(args.out / "runs.jsonl", args.resume)
    reused = set(cache.records)
    tasks = plan_tasks(splits, args.methods, args.gp_features, settings, cache)

    wall_time = run_tasks(run_task, data_dir, tasks, settings, cache, n_jobs, "shift tasks",
                          args.no_progress)

    wanted = {unit_key(d, k, s.feature, m, settings) for (d, k), usable in splits.items()
              for m in args.methods for s in usable}
    rows = [r for key, r in cache.records.items() if key in wanted]
    rank = {name: i for i, name in enumerate([*args.datasets, *args.kinds, *args.methods])}
    raw = ordered_frame(rows, COLUMNS, ["dataset", "kind", "feature", "method"], rank)
    summary = _shift_report.summarize(raw)

    args.out.mkdir(parents=True, exist_ok=True)
    raw.drop(columns="key", errors="ignore").to_csv(args.out / "shift_raw.csv", index=False)
    summary.to_csv(args.out / "shift.csv", index=False)
    n_reused = sum(r["key"] in reused for r in rows)
    notes = {
        **run_notes("benchmarks.shift", argv, wall_time, n_jobs, n_reused, len(rows)),
        "skipped": [f"{s.dataset} {s.kind} feature {s.feature}: {s.skipped}" for s in skipped],
        "ngboost": ngboost_note, "gp_max_rows": args.gp_max_rows, "gp_features": args.gp_features,
        "rpf_params": args.rpf_params, "log_target": args.log_target,
    }
    targets = _shift_report.target_summary(raw)
    _shift_report.write_markdown(args.out / "shift.md", summary, raw, targets, notes)
    figure = args.figure or args.out / "shift.png"
    _shift_report.plot(figure, raw, args.datasets, args.kinds, args.methods)
    if args.readme is not None:
        link = os.path.relpath(figure.resolve(), args.readme.resolve().parent)
        _readme.write_block(args.readme, args.readme_block,
                            _shift_report.readme_block(summary, raw, targets, notes, link))

    for _, row in raw[raw["error"] != ""].iterrows():
        print(f"FAILED {row['dataset']} {row['kind']} feature {row['feature']} {row['label']}: "
              f"{row['error']}")
    for line in notes["skipped"]:
        print(f"skipped {line}")
    print("\n".join(targets))
    print(f"Wrote {args.out / 'shift.md'}, shift.csv, shift_raw.csv and {figure}"
          + (f", and the {args.readme_block} block of {args.readme}" if args.readme else "")
          + f" in {wall_time:.0f} s ({n_jobs} job(s), {len(tasks)} task(s) run).")
    return raw


if __name__ == "__main__":
    main()
