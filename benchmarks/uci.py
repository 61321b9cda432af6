"""UCI regression benchmark: RandomizedPriorRegressor against a bootstrap ensemble, NGBoost, a GP
and BayesianRidge, with three kinds of 95% interval.

Every method is trained on each published train split of the shared UCI sets
(``shared/uci``, see its README) and scored on the test split in the target's original
units: RMSE, Gaussian NLL, CRPS, 95% coverage, mean 95% interval width, fit and predict
time. For RPF, the coverage and mean width of three 95% intervals (issue 11, see
``benchmarks/_intervals.py``): Gaussian, the estimator's own conformal interval (skipped,
with a note, while the estimator has no ``predict_interval``) and MAPIE's
jackknife+-after-bootstrap around the same pipeline (method ``mapie``: MAPIE refits it
``--mapie-resamplings`` + 1 times, so it runs on the first few splits only).

NGBoost (``NGBRegressor(n_estimators=500)``, Normal, its other defaults) runs in the peers'
environment ``.venv-peers`` through a subprocess (``benchmarks/peers.py``: NGBoost 0.6.0 pins
scikit-learn below 1.7); when that environment is missing the run says so and leaves NGBoost
out. Writes to ``--out`` ``results.md`` (mean ± standard error over splits, next to published
figures, targets, per-split NLL), ``results.csv``, ``results_raw.csv`` (one row per split and
method), ``intervals.csv``, ``intervals_raw.csv``, ``runs.jsonl`` (the resumable record) and the
figure (``--figure``, default ``<out>/nll.png``); with ``--readme README.md``, the block between
``<!-- uci:start -->`` and ``<!-- uci:end -->`` of the README. Prints how the defaults fare
against the targets of issues 5, 10 and 11.

Full run, as ``make benchmarks`` launches it::

    python -m benchmarks.uci --n-jobs 2 --figure docs/images/uci_nll.png --readme README.md

A smoke test, other RPF parameters (applied to both RPF methods), a subset of methods::

    python -m benchmarks.uci --datasets yacht --splits 2 --methods rpf bootstrap \\
        --rpf-params '{"n_estimators": 3, "max_epochs": 5}'

``--rpf-variant LABEL='{"json": ...}'`` (repeatable) adds further RPF rows side by side;
``--resume`` reuses the finished (dataset, split, method) results of an interrupted run with the
same options (``<out>/runs.jsonl``). The defaults must not be chosen from these test-split
numbers (see issue 5, section 3).
"""

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

from . import _intervals, _readme, _uci_report, peers
from ._common import (
    DEFAULT_GP_MAX_ROWS,
    ResultCache,
    check_n_jobs,
    check_rpf_params,
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
from ._uci_data import DATASETS, known_datasets, load_split, n_splits
from ._uci_report import METRICS, summarize

METHODS = {
    "rpf": "RPF (defaults)",
    "bootstrap": "Bootstrap ensemble (prior_scale=0)",
    "ngboost": "NGBoost (Normal)",
    "gp": "GP (ARD)",
    "bayesian_ridge": "BayesianRidge",
    "mapie": "MAPIE J+aB around RPF (intervals only)",
}
# The exact GP (2 optimizer restarts) dominates the run time. Measured per split on one core
# (benchmarks on a shared 2-core machine): yacht ~3 s, energy ~20-80 s, concrete ~60-100 s,
# wine-quality-red ~230-400 s, kin8nm (2,000-row subset) ~80-140 s; so by default the GP runs
# on the first few splits only.
DEFAULT_GP_SPLITS = "energy=5,concrete=5,wine-quality-red=3,kin8nm=3"
# MAPIE costs (resamplings + 1) RPF fits per split: about 20 s on yacht, 50 s on concrete and
# 6 min on kin8nm with 20 resamplings.
DEFAULT_MAPIE_SPLITS = "yacht=5,energy=5,concrete=5,wine-quality-red=3,kin8nm=2"
# NGBoost splits per peers subprocess (importing ngboost takes about 5 s).
DEFAULT_NGBOOST_BATCH = 5
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
SCORE_COLUMNS = ["dataset", "split", "method", "label", "n_train", "n_test", *METRICS,
                 "fit_warnings", "error"]
INTERVAL_COLUMNS = ["dataset", "split", "interval", "coverage", "width", "fit_time",
                    "predict_time", "error"]
# Rough seconds per fit on one core, to start the longest tasks first.
_COST = {"gp": lambda n: 0.08 * min(n, 2000), "ngboost": lambda n: 0.02 * n,
         "bayesian_ridge": lambda n: 0.0}


# ---------------------------------------------------------------------------- estimators
def make_estimator(method, split, n_features, rpf_params, variants):
    """A fresh, seeded pipeline for an in-process ``method`` (or ``"rpf:<label>"``)."""
    if method == "gp":
        return make_gp(n_features, split)
    if method == "bayesian_ridge":
        from sklearn.linear_model import BayesianRidge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), BayesianRidge())
    if method in ("rpf", "bootstrap"):
        return make_rpf(split, rpf_params, prior=method == "rpf")
    if method.startswith("rpf:"):
        return make_rpf(split, {**rpf_params, **variants[method.removeprefix("rpf:")]})
    raise ValueError(f"Unknown method {method!r}; expected one of {list(METHODS)}.")


def method_label(method):
    return METHODS.get(method) or f"RPF ({method.removeprefix('rpf:')})"


def score(y_test, mean, std, fit_time, predict_time, fit_warnings=0):
    """Scores in the target's units of a Gaussian prediction ``(mean, std)``."""
    from sklearn_rpf.metrics import crps_gaussian, gaussian_nll, interval_coverage, interval_width

    return {
        "rmse": float(np.sqrt(np.mean((y_test - mean) ** 2))),
        "nll": gaussian_nll(y_test, mean, std),
        "crps": crps_gaussian(y_test, mean, std),
        "coverage_95": interval_coverage(y_test, mean, std, level=0.95),
        "width_95": interval_width(y_test, mean, std, level=0.95),
        "fit_time": fit_time, "predict_time": predict_time,
        # e.g. the GP's ConvergenceWarning; counted rather than printed over the progress bar
        "fit_warnings": fit_warnings,
    }


def evaluate(estimator, X_train, y_train, X_test, y_test):
    """Fit, predict with ``return_std=True``: ``(scores, mean, std)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        fit_time = time.perf_counter() - start
    start = time.perf_counter()
    mean, std = estimator.predict(X_test, return_std=True)
    predict_time = time.perf_counter() - start
    return score(y_test, mean, std, fit_time, predict_time, len(caught)), mean, std


# ---------------------------------------------------------------------------- tasks
def unit_key(dataset, split, method, settings):
    """Everything that determines one (dataset, split, method) result."""
    rpf = rpf_cache_settings(settings["rpf_params"])
    relevant = {"gp": settings["gp_max_rows"], "ngboost": settings["ngboost_params"],
                "mapie": [rpf, settings["mapie_resamplings"]],
                "bayesian_ridge": None}.get(method, rpf)
    if method.startswith("rpf:"):
        relevant = [relevant, settings["rpf_variants"][method.removeprefix("rpf:")]]
    return ResultCache.key(benchmark="uci", dataset=dataset, split=split, method=method,
                           settings=relevant)


def _unit(dataset, split, method, settings, n_train, n_test):
    return {"key": unit_key(dataset, split, method, settings), "dataset": dataset, "split": split,
            "method": method, "scores": [], "intervals": [], "error": "",
            "row": {"dataset": dataset, "split": split, "method": method,
                    "label": method_label(method), "n_train": n_train, "n_test": n_test}}


def _finish(unit, scores=None, error=""):
    row = unit.pop("row")
    row.update(scores or {**dict.fromkeys(METRICS, np.nan), "fit_warnings": 0}, error=error)
    unit["scores"] = [row]
    # A "skipped" interval (no predict_interval in this version) is not a failure to re-run.
    errors = [error] + [record["error"] for record in unit["intervals"]]
    unit["error"] = next((e for e in errors if e and not e.startswith("skipped")), "")
    return unit


def run_in_process(data_dir, dataset, split, method, settings):
    """One (dataset, split, method) of the methods that run in this environment."""
    X_train, y_train, X_test, y_test = load_split(data_dir, dataset, split)
    if method == "mapie":
        unit = _unit(dataset, split, method, settings, len(y_train), len(y_test))
        record = _intervals.mapie_interval(make_rpf(split, settings["rpf_params"]), X_train,
                                           y_train, X_test, y_test, settings["mapie_resamplings"],
                                           split)
        unit.pop("row")
        unit["intervals"] = [{"dataset": dataset, "split": split, **record}]
        unit["error"] = "" if record["error"].startswith("skipped") else record["error"]
        return [unit]
    if method == "gp":
        rows = gp_rows(len(y_train), settings["gp_max_rows"], split)
        X_train, y_train = X_train[rows], y_train[rows]
    unit = _unit(dataset, split, method, settings, len(y_train), len(y_test))
    try:
        estimator = make_estimator(method, split, X_train.shape[1], settings["rpf_params"],
                                   settings["rpf_variants"])
        scores, mean, std = evaluate(estimator, X_train, y_train, X_test, y_test)
    except Exception as exc:  # noqa: BLE001 - one failed fit must not lose a long run
        return [_finish(unit, error=f"{type(exc).__name__}: {exc}")]
    if method == "rpf":
        gaussian_time, conformal_time = _intervals.warm_predict_times(estimator, X_test)
        records = [_intervals.gaussian_interval(y_test, mean, std, scores["fit_time"],
                                                gaussian_time),
                   _intervals.conformal_interval(estimator, X_test, y_test, scores["fit_time"],
                                                 conformal_time)]
        unit["intervals"] = [{"dataset": dataset, "split": split, **r} for r in records]
    return [_finish(unit, scores)]


def run_ngboost(data_dir, dataset, splits, settings):
    """NGBoost on several splits of one data set, in one peers subprocess."""
    data = [load_split(data_dir, dataset, split) for split in splits]
    units = [_unit(dataset, split, "ngboost", settings, len(d[1]), len(d[3]))
             for split, d in zip(splits, data, strict=True)]
    jobs = [{"X_train": d[0], "y_train": d[1], "X_test": d[2], "seed": split}
            for split, d in zip(splits, data, strict=True)]
    try:
        outputs = peers.ngboost_fit_predict(settings["peers_python"], jobs,
                                            settings["ngboost_params"])
    except Exception as exc:  # noqa: BLE001
        return [_finish(unit, error=f"{type(exc).__name__}: {exc}") for unit in units]
    return [_finish(unit, score(d[3], out["mean"], out["std"], out["fit_time"], out["predict_time"]))
            for unit, d, out in zip(units, data, outputs, strict=True)]


def run_task(data_dir, dataset, splits, method, settings):
    """One task, on one thread (so are NGBoost's subprocesses)."""
    if method == "ngboost":
        return run_ngboost(data_dir, dataset, splits, settings)
    with one_thread():
        return run_in_process(data_dir, dataset, splits[0], method, settings)


def plan_tasks(datasets, splits, methods, limits, settings, cache, sizes):
    """``(dataset, splits, method)`` tasks still to run, the longest first."""
    tasks = []
    for dataset in datasets:
        for method in methods:
            chosen = splits[dataset][:limits.get(method, {}).get(dataset, len(splits[dataset]))]
            todo = [s for s in chosen if cache.get(unit_key(dataset, s, method, settings)) is None]
            if method == "ngboost":
                size = settings["ngboost_batch"]
                tasks += [(dataset, todo[i:i + size], method) for i in range(0, len(todo), size)]
            else:
                tasks += [(dataset, [s], method) for s in todo]

    def cost(task):
        dataset, chosen, method = task
        rpf = 2.3e-3 * sizes[dataset]
        if method == "mapie":
            return (settings["mapie_resamplings"] + 1) * rpf
        return len(chosen) * _COST.get(method, lambda n: rpf)(sizes[dataset])

    return sorted(tasks, key=cost, reverse=True)


# ---------------------------------------------------------------------------- command line
def _parse_splits(values, available):
    words_ = words(values)
    if len(words_) == 1:  # a count: the first N published splits
        count = int(words_[0])
        if not 1 <= count <= available:
            raise SystemExit(f"--splits {count}: expected a count between 1 and {available}.")
        return list(range(count))
    splits = sorted({int(word) for word in words_})
    if splits[0] < 0 or splits[-1] >= available:
        raise SystemExit(f"--splits {splits}: split indices must be in [0, {available}).")
    return splits


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder of the UCI sets (default: $SKLEARN_RPF_UCI or <repo>/../shared/uci)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS),
                        help=f"data sets to run (default: all of {', '.join(DATASETS)})")
    parser.add_argument("--splits", nargs="+", default=["20"],
                        help="number of splits (the first N) or explicit split indices (default: 20)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS),
                        help=f"subset of {', '.join(METHODS)} (default: all)")
    parser.add_argument("--gp-splits", default=DEFAULT_GP_SPLITS,
                        help="run the GP on the first N of the selected splits only: N for every "
                             "data set, NAME=N,... or 'all' (default: %(default)s)")
    parser.add_argument("--gp-max-rows", type=int, default=DEFAULT_GP_MAX_ROWS,
                        help="train the GP on a random subset of at most this many rows (default: %(default)s)")
    parser.add_argument("--mapie-splits", default=DEFAULT_MAPIE_SPLITS,
                        help="run MAPIE on the first N of the selected splits only, as --gp-splits "
                             "(default: %(default)s)")
    parser.add_argument("--mapie-resamplings", type=int, default=_intervals.DEFAULT_MAPIE_RESAMPLINGS,
                        help="bootstrap resamplings of MAPIE's J+aB (default: %(default)s)")
    parser.add_argument("--ngboost-params", default="{}",
                        help="JSON object overriding NGBRegressor parameters (default: 500 trees)")
    parser.add_argument("--ngboost-batch", type=int, default=DEFAULT_NGBOOST_BATCH,
                        help="NGBoost splits per peers subprocess (default: %(default)s)")
    parser.add_argument("--peers-python", default=None,
                        help=f"python of the peers' environment (default: ${peers.ENV_VAR} or "
                             ".venv-peers/bin/python)")
    parser.add_argument("--rpf-params", default="{}",
                        help="JSON object overriding RandomizedPriorRegressor parameters of both RPF methods")
    parser.add_argument("--rpf-variant", action="append", default=[], metavar="LABEL=JSON",
                        help="add an RPF method with these parameters on top of --rpf-params (repeatable)")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="parallel tasks, one thread each (default: 1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder (default: benchmarks/results)")
    parser.add_argument("--figure", type=Path, default=None,
                        help="where the NLL figure goes (default: <out>/nll.png)")
    parser.add_argument("--readme", type=Path, default=None,
                        help="also write the block between <!-- uci:start --> and <!-- uci:end --> of this file")
    parser.add_argument("--readme-block", default="uci",
                        help="the name of that block (default: %(default)s)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the finished results in <out>/runs.jsonl (same options, same code)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    args.datasets = words(args.datasets)
    known = known_datasets(args.data_dir)
    unknown = sorted(set(args.datasets) - set(known))
    if unknown:
        parser.error(f"unknown data sets {unknown}; expected some of {known} (folders of "
                     "--data-dir in the layout of shared/uci count too)")
    args.methods = words(args.methods)
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; expected some of {list(METHODS)}")
    args.rpf_params = parse_json_params(args.rpf_params, "--rpf-params")
    try:  # a misspelt parameter or a bad value fails here, not in every fit of a long run
        check_rpf_params(args.rpf_params)
    except (TypeError, ValueError) as exc:
        parser.error(f"--rpf-params: {exc}")
    args.ngboost_params = parse_json_params(args.ngboost_params, "--ngboost-params")
    variants = {}
    for item in args.rpf_variant:
        label, sep, text = item.partition("=")
        if not sep or not label:
            parser.error(f"--rpf-variant {item!r}: expected LABEL=JSON")
        variants[label] = parse_json_params(text, "--rpf-variant")
    args.rpf_variant = variants
    args.gp_splits = parse_counts(args.gp_splits, args.datasets, "--gp-splits", known)
    args.mapie_splits = parse_counts(args.mapie_splits, args.datasets, "--mapie-splits", known)
    for option in ("gp_max_rows", "mapie_resamplings", "ngboost_batch"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be a positive integer")
    check_n_jobs(parser, args.n_jobs)
    if args.readme is not None:
        _readme.check_block(args.readme, args.readme_block)  # before the run, not after it
    return args


def main(argv=None):
    """Run the benchmark; return the summary table (one row per data set and method)."""
    from joblib import effective_n_jobs

    args = parse_args(argv)
    data_dir, ngboost_note = resolve_inputs(args, "the split index")
    if "ngboost" in args.methods:
        ngboost_note += f", up to {args.ngboost_batch} splits per subprocess"
    methods = args.methods + [f"rpf:{label}" for label in args.rpf_variant]
    splits = {name: _parse_splits(args.splits, n_splits(data_dir, name)) for name in args.datasets}
    n_jobs = effective_n_jobs(args.n_jobs)
    settings = {"rpf_params": args.rpf_params, "rpf_variants": args.rpf_variant,
                "gp_max_rows": args.gp_max_rows, "mapie_resamplings": args.mapie_resamplings,
                "ngboost_params": args.ngboost_params, "ngboost_batch": args.ngboost_batch,
                "peers_python": args.peers_python}
    cache = ResultCache(args.out / "runs.jsonl", args.resume)
    sizes = {name: len(load_split(data_dir, name, 0)[1]) for name in args.datasets}
    limits = {"gp": args.gp_splits, "mapie": args.mapie_splits}
    tasks = plan_tasks(args.datasets, splits, methods, limits, settings, cache, sizes)
    reused = set(cache.records)

    wall_time = run_tasks(run_task, data_dir, tasks, settings, cache, n_jobs, "UCI tasks",
                          args.no_progress)

    chosen = {(d, s, m) for d in args.datasets for m in methods
              for s in splits[d][:limits.get(m, {}).get(d, len(splits[d]))]}
    # By key, not by (dataset, split, method): a resumed file may still hold results fitted
    # under other settings (an older default), which are not this run's.
    wanted = {unit_key(*unit, settings) for unit in chosen}
    units = [u for key, u in cache.records.items() if key in wanted]
    n_reused = sum(u["key"] in reused for u in units)
    # Tasks finish in any order: sort rows as the data sets and methods were asked for.
    rank = {**{name: i for i, name in enumerate(args.datasets)},
            **{method: i for i, method in enumerate(methods)},
            **{interval: i for i, interval in enumerate(_intervals.INTERVALS)}}
    raw = ordered_frame([row for u in units for row in u["scores"]], SCORE_COLUMNS,
                        ["dataset", "method", "split"], rank)
    intervals = ordered_frame([r for u in units for r in u["intervals"]], INTERVAL_COLUMNS,
                              ["dataset", "interval", "split"], rank)
    summary = summarize(raw)
    interval_summary = _uci_report.summarize_intervals(intervals)

    args.out.mkdir(parents=True, exist_ok=True)
    raw.to_csv(args.out / "results_raw.csv", index=False)
    summary.to_csv(args.out / "results.csv", index=False)
    intervals.to_csv(args.out / "intervals_raw.csv", index=False)
    interval_summary.to_csv(args.out / "intervals.csv", index=False)
    targets = _uci_report.target_summary(raw, intervals)
    notes = {
        **run_notes("benchmarks.uci", argv, wall_time, n_jobs, n_reused, len(units)),
        "gp_max_rows": args.gp_max_rows,
        "gp_splits": {name: len(splits[name][:args.gp_splits[name]]) for name in args.datasets
                      if "gp" in methods and name in args.gp_splits
                      and args.gp_splits[name] < len(splits[name])},
        "ngboost": ngboost_note,
        "mapie": _intervals.mapie_note(args.mapie_resamplings, {
            name: len(splits[name][:args.mapie_splits.get(name, len(splits[name]))])
            for name in args.datasets}) if "mapie" in methods else "",
        "rpf_params": args.rpf_params, "rpf_variants": args.rpf_variant,
        "datasets": args.datasets,
    }
    labels = {m: method_label(m) for m in methods}
    _uci_report.write_markdown(args.out / "results.md", summary, interval_summary, raw, targets, notes)
    figure = args.figure or args.out / "nll.png"
    _uci_report.plot_nll(figure, raw, args.datasets, labels)
    if args.readme is not None:
        link = os.path.relpath(figure.resolve(), args.readme.resolve().parent)
        _readme.write_block(args.readme, args.readme_block, _uci_report.readme_block(
            summary, interval_summary, raw, targets, notes, link))

    for _, row in raw[raw["error"] != ""].iterrows():
        print(f"FAILED {row['dataset']} split {row['split']} {row['label']}: {row['error']}")
    for _, row in intervals[intervals["error"] != ""].drop_duplicates(["dataset", "interval", "error"]).iterrows():
        print(f"{row['dataset']} {row['interval']} interval: {row['error']}")
    print("\n".join(targets))
    block = f", and the {args.readme_block} block of {args.readme}" if args.readme else ""
    print(f"Wrote {args.out / 'results.md'}, results.csv, results_raw.csv, intervals.csv, "
          f"intervals_raw.csv and {figure}{block} in {wall_time:.0f} s ({n_jobs} job(s), "
          f"{len(tasks)} task(s) run).")
    return summary


if __name__ == "__main__":
    main()
