"""What the UCI and shift benchmarks share: estimators, option parsing, threads, caching, tables."""

import contextlib
import datetime
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GP_MAX_ROWS = 2000


# ---------------------------------------------------------------------------- estimators
def make_rpf(seed, params, prior=True):
    """``StandardScaler`` + ``RandomizedPriorRegressor(random_state=seed, **params)``.

    ``prior=False`` is the bootstrap ensemble: the same estimator with ``prior_scale=0``,
    whatever ``params`` says.
    """
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_rpf import RandomizedPriorRegressor

    from ._prior_shapes import EvidencePriorRegressor, parse, resolve

    params = {"random_state": seed, **params}
    shape = params.pop("prior", None)
    if not prior:
        shape, params["prior_scale"] = None, 0.0
    if isinstance(shape, str) and shape.startswith("evidence:"):
        # A prior drawn from a GP fitted to the training rows: built at fit time.
        if "prior_scale" in params:
            raise ValueError(f"prior {shape!r} sets prior_scale itself (the number times the "
                             "GP's fitted amplitude); leave prior_scale out.")
        seed = params.pop("random_state")
        return make_pipeline(StandardScaler(), EvidencePriorRegressor(
            parse(shape)[1], params=params, random_state=seed))
    if shape is not None:  # a named shape of benchmarks/_prior_shapes.py, or a module
        params["prior"] = resolve(shape)
    return make_pipeline(StandardScaler(), RandomizedPriorRegressor(**params))


def rpf_cache_settings(params):
    """What an RPF result depends on, for a cache key: ``params`` over the regressor's defaults
    as installed. A resumed run after a default changed (``n_estimators`` 10 -> 20, say) must
    not reuse results fitted under the old one."""
    from sklearn_rpf import RandomizedPriorRegressor

    return {**RandomizedPriorRegressor().get_params(), **params}


def check_rpf_params(params):
    """Fail before a long run, not in every fit of it: a misspelt name, a bad value or an
    unknown prior shape raises TypeError or ValueError here."""
    from sklearn_rpf import RandomizedPriorRegressor

    make_rpf(0, params)
    plain = {key: value for key, value in params.items()
             if not (key == "prior" and isinstance(value, str))}  # checked by make_rpf
    RandomizedPriorRegressor(**plain)._validate_params()


def make_gp(n_features, seed):
    """Exact GP: constant x ARD RBF + white noise, ``normalize_y``, 2 optimizer restarts."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    kernel = ConstantKernel() * RBF(length_scale=np.ones(n_features)) + WhiteKernel()
    gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2, random_state=seed)
    return make_pipeline(StandardScaler(), gp)


def gp_rows(n_rows, max_rows, seed):
    """Indices of the (seeded, random) rows the GP trains on: all of them up to ``max_rows``."""
    if n_rows <= max_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, max_rows, replace=False))


def gp_latent_std(pipeline, y_fit, X):
    """Standard deviation of the GP's latent function at ``X``, in the target's units.

    scikit-learn's ``predict(return_std=True)`` returns the std of ``f(x) + noise``: the
    variance is ``kernel_.diag(X) - ...`` and the fitted ``WhiteKernel`` adds its
    ``noise_level`` to that diagonal (its cross-covariance with the training rows is zero),
    then, with ``normalize_y=True``, the variance is scaled by the training target's variance
    (``np.std``, ddof 0). The latent variance is therefore the total variance minus
    ``noise_level * var(y_fit)`` (tests/test_shift_benchmark.py checks this against a refit
    of the noise-free kernel).
    """
    from sklearn.gaussian_process.kernels import WhiteKernel

    gp = pipeline[-1]
    white = gp.kernel_.k2
    if not isinstance(white, WhiteKernel):
        raise TypeError(f"expected a fitted kernel '... + WhiteKernel'; got {gp.kernel_}.")
    _, std = pipeline.predict(X, return_std=True)
    scale = np.var(y_fit) if gp.normalize_y else 1.0
    return np.sqrt(np.clip(std**2 - white.noise_level * scale, 0.0, None))


# ---------------------------------------------------------------------------- threads
@contextlib.contextmanager
def one_thread():
    """One torch thread and one BLAS/OpenMP thread inside the block; restored after it.

    Every benchmark task runs so, in joblib workers or not: parallel tasks share the cores
    instead of each thread pool grabbing all of them, and fit times compare across runs and
    with ``--n-jobs``. (On the shared 2-core machine, load 5, one concrete fit took 72 s with
    torch's default threads.)
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------- a benchmark run
def resolve_inputs(args, seed_label):
    """The checked data folder and NGBoost's note; NGBoost leaves ``args.methods`` when no peers'
    interpreter is found (the scripts then say so instead of failing)."""
    from . import peers
    from ._uci_data import check_data_dir, default_data_dir

    data_dir = str(check_data_dir(args.data_dir or default_data_dir(), args.datasets))
    note = ""
    if "ngboost" in args.methods:
        args.peers_python, note = peers.resolve(args.peers_python, args.ngboost_params, seed_label)
        if args.peers_python is None:
            args.methods.remove("ngboost")
    return data_dir, note


def run_tasks(run_task, data_dir, tasks, settings, cache, n_jobs, desc, quiet):
    """Run ``run_task(data_dir, *task, settings)`` for every task on ``n_jobs`` workers, adding
    each result to ``cache`` as it arrives; returns the wall time in seconds."""
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    start = time.perf_counter()
    results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        delayed(run_task)(data_dir, *task, settings) for task in tasks)
    for result in tqdm(results, total=len(tasks), desc=desc, disable=quiet, file=sys.stderr):
        cache.add(result)
    return time.perf_counter() - start


def check_n_jobs(parser, n_jobs):
    """joblib's trace for ``--n-jobs 0`` becomes the parser's error, in words."""
    if n_jobs == 0:
        parser.error("--n-jobs 0 has no meaning: a positive count, or -1 for every CPU")


def reused_clause(notes):
    """"; N of M results reused from an earlier run" after a resumed run (its wall time is then
    not the fits'), for a report's first line; empty otherwise."""
    return f"; {notes['reused']}" if notes.get("reused") else ""


def run_notes(module, argv, wall_time, n_jobs, n_reused, n_results):
    """What every report says of its run: the command, when, how long, on how many jobs."""
    return {
        "command": command_line(module, argv), "wall_time": wall_time,
        "n_jobs": n_jobs, "cpu_count": os.cpu_count(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "reused": (f"{n_reused} of {n_results} results reused from an earlier run"
                   if n_reused else ""),
    }


# ---------------------------------------------------------------------------- options
def words(values):
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``: accept commas and spaces alike."""
    return [word for value in values for word in value.split(",") if word]


def parse_json_params(text, option):
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{option}: not valid JSON ({exc}): {text!r}") from exc
    if not isinstance(params, dict):
        raise SystemExit(f"{option}: expected a JSON object of parameters; got {text!r}.")
    return params


def parse_counts(value, names, option, known=None):
    """``"5"`` -> every name; ``"kin8nm=5,concrete=10"`` -> those of ``names`` (a name that is
    not in ``known`` is an error, a known one that is not run is dropped, so that no report
    mentions it); ``"all"`` -> no limit."""
    if value in ("all", ""):
        return {}
    if "=" not in value:
        return dict.fromkeys(names, _count(value, option))
    counts = {}
    for item in (item for item in value.split(",") if item):
        name, _, count = item.partition("=")
        count = _count(count, option)
        if known is not None and name not in known:
            raise SystemExit(f"{option}: unknown data set {name!r}; expected some of {list(known)}.")
        if name in names:
            counts[name] = count
    return counts


def _count(text, option):
    try:
        count = int(text)
    except ValueError:
        raise SystemExit(f"{option}: expected a count or NAME=COUNT,...; got {text!r}.") from None
    if count < 0:
        raise SystemExit(f"{option}: counts must not be negative; got {count}.")
    return count


def command_line(module, argv):
    """The command as a user would type it, for the record in the output."""
    args = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    return shlex.join(["python", "-m", module, *args])


# ---------------------------------------------------------------------------- resuming
class ResultCache:
    """Finished results, one JSON line each, keyed by everything that determines them.

    Written as the run goes, so that an interrupted run can be resumed (``resume=True``):
    then the successful records already in the file are kept and reused, failed ones are run
    again. Without ``resume`` the file starts empty. ``records`` holds this run's records
    (reused or new), the last one per key.
    """

    def __init__(self, path, resume):
        self.path = Path(path)
        self.records = {}
        if resume and self.path.is_file():
            with open(self.path) as f:
                for line in f:
                    if line.strip():
                        record = json.loads(line)
                        if not record.get("error"):
                            self.records[record["key"]] = record
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w") as f:  # keep only what is reused
            for record in self.records.values():
                f.write(json.dumps(record) + "\n")

    @staticmethod
    def key(**fields):
        return json.dumps(fields, sort_keys=True, default=str)

    def get(self, key):
        """The successful record of ``key``, or None."""
        record = self.records.get(key)
        return None if record is None or record.get("error") else record

    def add(self, records):
        with open(self.path, "a") as f:
            for record in records:
                f.write(json.dumps(record, default=_plain) + "\n")
                self.records[record["key"]] = record


def _plain(value):
    """NumPy scalars as Python numbers in JSON."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ---------------------------------------------------------------------------- tables and figures
def ordered_frame(rows, columns, order, rank):
    """Rows as a DataFrame sorted by ``order``: names by their ``rank``, numbers as numbers.

    Tasks finish in any order; tables list data sets and methods as they were asked for.
    """
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame
    return frame.sort_values(order, key=lambda column: (
        column if pd.api.types.is_numeric_dtype(column) else column.map(rank))).reset_index(drop=True)


def decimals(value, significant=3):
    """Decimals that show ``significant`` digits of ``value`` (2 for 0 or NaN, at most 4)."""
    if not np.isfinite(value) or value == 0:
        return 2
    return int(np.clip(significant - 1 - np.floor(np.log10(abs(value))), 0, 4))


def cell(mean, se, places):
    """``mean ± se`` with ``places`` decimals; ``–`` when there is no value."""
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.{places}f} ± {se:.{places}f}" if np.isfinite(se) else f"{mean:.{places}f}"


def draw_means(ax, points, references=(), off_scale=10.0):
    """Mean ± standard error of each ``(x, values, color, marker, label)`` on ``ax``.

    A mean more than ``off_scale`` above the median of all means and ``references`` (one
    blown-up split would flatten the rest) is drawn as a triangle at the top, with its value.
    """
    means = [np.mean(values) for _, values, *_ in points if len(values)]
    if not means:
        return
    centre = np.median([*means, *references])
    above = []
    for x, values, color, marker, label in points:
        values = np.asarray(values, dtype=float)
        if not len(values):
            continue
        if values.mean() > centre + off_scale:
            above.append((x, values.mean(), color, label))
            continue
        se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
        ax.errorbar(x, values.mean(), yerr=se, fmt=marker, color=color, capsize=3, label=label)
    top = ax.get_ylim()[1]
    for x, mean, color, label in above:
        ax.plot(x, top, "^", color=color, label=label, clip_on=False)
        ax.annotate(f"{mean:.3g}\n(off scale)", (x, top), xytext=(0, -24),
                    textcoords="offset points", ha="center", fontsize=7)


def figure_legend(fig, axes, ncol=3):
    """One legend for the figure, with every label of every panel once."""
    handles, labels = [], []
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=8)
