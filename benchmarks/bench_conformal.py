"""What the conformal interval costs at predict time on the shared UCI sets, and what backs the
jackknife+ search's two constants.

For each data set and split, the shipped defaults are fitted (the UCI benchmark's
``StandardScaler`` pipeline, ``random_state`` the split, one thread) and, each called once untimed
and then alternately for ``--rounds`` rounds (so that a slow spell of the machine hits them all):

* ``predict(X, return_std=True)`` on the test split;
* ``predict_interval(X)`` as shipped (conformal, 95%);
* the same with one pass over every calibration row forced (``_SMALL_SEARCH`` above the size);
* the same with the pruned search forced (``_SMALL_SEARCH`` 0), for each ``--head-factors`` value
  of ``_HEAD_FACTOR`` (how many rows, in multiples of the selected rank, set the pruning's floor).

Every variant's ends are compared with the one pass's: the search is exact, so they may differ
only by the rounding of the members' products (the largest difference is printed, and more than
1e-6 of the target's scale fails the run). The table gives, per set, medians over the splits of
each call's median time, and the interval's extra cost over ``predict``; the shipped search runs
one pass where calibration rows x test points is at most ``_SMALL_SEARCH``. It also gives how many
out-of-bag means ``mu_{-i}(x)`` the shipped search forms per test point (one pass: one per row for
both ends; the pruned search forms the rows each end needs), counted in one more, untimed call.

And it gives the least work of any exact search of this kind. A search that places a calibration row
above or below an end by a bound from how many members left it out (``mu_{-i}(x)`` lies between
the means of the ``c_i`` smallest and the ``c_i`` largest member outputs, the tightest such bound)
cannot place the rows whose bounds straddle the end: their out-of-bag means must be formed, and
the end selected among them. The least work counts those rows at every test point (both ends), then
times, in rounds of its own after the calls above, forming that many means for every test point
in one product and NumPy's selection among them (``np.partition``, in place): what the search
would still cost if it knew in advance exactly which rows to form, before any of its own work
to find them.

Run ``python -m benchmarks.bench_conformal`` (about a minute on 2 cores).
"""

import argparse
import contextlib
import time

import numpy as np

from ._common import make_rpf, one_thread
from ._uci_data import DATASETS, default_data_dir, load_split

CONFIDENCE = 0.95


@contextlib.contextmanager
def search_settings(small=None, head=None):
    """The search's ``_SMALL_SEARCH`` and ``_HEAD_FACTOR`` set inside the block (None: as
    shipped), restored after it; the search reads both at each call."""
    from sklearn_rpf.ensemble import _jackknife_search as search

    saved = search._SMALL_SEARCH, search._HEAD_FACTOR
    try:
        if small is not None:
            search._SMALL_SEARCH = small
        if head is not None:
            search._HEAD_FACTOR = head
        yield
    finally:
        search._SMALL_SEARCH, search._HEAD_FACTOR = saved


def values_evaluated(call):
    """How many values ``mu_{-i}(x)`` the shipped search forms in ``call()``: the sizes of its
    products, counted through the search's one product function."""
    from sklearn_rpf.ensemble import _jackknife_search as search

    product, sizes = search._product, []

    def counting(a, b):
        out = product(a, b)
        sizes.append(out.size)
        return out

    search._product = counting
    try:
        call()
    finally:
        search._product = product
    return sum(sizes)


@contextlib.contextmanager
def captured_search():
    """Inside the block, the arguments and ends of every call to the absolute-score search, in
    a list yielded to the block: ``(members, rows, alpha, (lower, upper))``."""
    from sklearn_rpf.ensemble import _jackknife_search as search

    bounds, calls = search.absolute_bounds, []

    def capturing(members, rows, alpha):
        ends = bounds(members, rows, alpha)
        calls.append((members.copy(), rows, alpha, ends))
        return ends

    search.absolute_bounds = capturing
    try:
        yield calls
    finally:
        search.absolute_bounds = bounds


def undecided(members, rows, ends):
    """Per test point, how many calibration rows no bound from their out-of-bag counts places
    above or below its end, for both ends (uniform weights), and for how many the bound alone
    says they lie above it.

    ``members`` ``(K, 2 m)`` holds the upper problems and then the negated lower ones, as the
    search does, and ``ends`` ``(2 m,)`` their ends. Row ``i`` lies between ``R_i`` plus the mean
    of the ``c_i`` smallest and ``R_i`` plus the mean of the ``c_i`` largest member outputs.
    """
    K, points = members.shape
    counts = np.count_nonzero(rows.average, axis=0)
    ordered = np.sort(members.astype(np.float64), axis=0)
    sizes = np.arange(1, K + 1)[:, None]
    lowest = (np.cumsum(ordered, axis=0) / sizes)[counts - 1]  # (n, 2 m)
    highest = (np.cumsum(ordered[::-1], axis=0) / sizes)[counts - 1]
    residual = rows.residual.astype(np.float64)[:, None]
    above = residual + lowest > ends
    straddling = ~above & (residual + highest >= ends)
    return straddling.sum(axis=0), above.sum(axis=0)


def least_work_call(members, rows, rank, straddling, above):
    """The least work as one call: forming the median number of straddling means at every test
    point (one product, plus the residuals) and selecting each point's end among them in place,
    as a search would."""
    from sklearn_rpf.ensemble import _jackknife_search as search

    size = max(1, int(np.median(straddling)))
    average, residual = rows.average[:, :size], rows.residual[:size]
    both = np.ascontiguousarray(members.T)
    kth = size - int(np.clip(np.median(rank - above), 1, size))

    def least_work():
        values = search._product(both, average)
        values += residual
        values.partition(kth, axis=1)
        return values[:, kth]

    return least_work


def variants(head_factors):
    """Name -> search settings of every interval variant timed."""
    out = {"shipped": {}, "one pass": {"small": np.inf}}
    out.update({f"pruned, head {h:g}": {"small": 0, "head": h} for h in head_factors})
    return out


def measure(data_dir, name, split, rounds, head_factors, params=None):
    """One fitted model's times (seconds, medians over ``rounds``) of ``predict`` and of each
    interval variant, its size, and the largest difference of any variant's ends from the one
    pass's, relative to the target's standard deviation. ``params``: the regressor's parameters
    other than the shipped defaults (tests use tiny models)."""
    from sklearn_rpf.ensemble import _jackknife_search as search

    X_train, y_train, X_test, _ = load_split(data_dir, name, split)
    with one_thread():
        pipeline = make_rpf(split, params or {}).fit(X_train, y_train)
        regressor, X = pipeline[-1], pipeline[:-1].transform(X_test)
        calls = {"predict": (lambda: regressor.predict(X, return_std=True), {})}
        for label, settings in variants(head_factors).items():
            calls[label] = (lambda: regressor.predict_interval(X, CONFIDENCE), settings)
        ends = {}
        for label, (call, settings) in calls.items():  # untimed: the first call builds caches
            with search_settings(**settings):
                ends[label] = call()
        times = {label: [] for label in calls}
        for _ in range(rounds):
            for label, (call, settings) in calls.items():
                with search_settings(**settings):
                    start = time.perf_counter()
                    call()
                    times[label].append(time.perf_counter() - start)
        evaluated = values_evaluated(lambda: regressor.predict_interval(X, CONFIDENCE))
        with captured_search() as searches:
            regressor.predict_interval(X, CONFIDENCE)
        members, rows, alpha, (lower, upper) = searches[0]
        if len(searches) != 1 or members.shape[1] != len(X):
            raise RuntimeError("the least work reads one search over every test point (one target, "
                               f"one batch); predict_interval made {len(searches)}")
        both = np.concatenate([members, -members], axis=1)
        straddling, above = undecided(both, rows, np.concatenate([upper, -lower]))
        if rows.weight is not None:  # the UCI sets have none; the least work counts rows
            raise RuntimeError("the least work is measured for rows of equal weight only")
        rank = search._selection(rows.weight, len(rows.residual), alpha)[0]
        least_work = least_work_call(both, rows, rank, straddling, above)
        least_work()
        least_times = []
        for _ in range(rounds):
            start = time.perf_counter()
            least_work()
            least_times.append(time.perf_counter() - start)
    reference = np.concatenate(ends["one pass"])
    difference = max(float(np.max(np.abs(np.concatenate(ends[label]) - reference)))
                     for label in calls if label != "predict")
    n_rows = regressor._calibration.n_rows
    return {"data set": name, "split": split, "rows": n_rows, "test": len(X),
            "one pass shipped": n_rows * len(X) <= search._SMALL_SEARCH,
            "values per point": evaluated / len(X),
            # Both ends of a test point: the upper problem's count plus the lower one's.
            "undecided per point": float(np.median(straddling[:len(X)] + straddling[len(X):])),
            "least work": float(np.median(least_times)),
            "difference": difference / float(np.std(y_train)),
            **{label: float(np.median(values)) for label, values in times.items()}}


def report(records, head_factors):
    labels = ["predict", *variants(head_factors)]
    lines = [
        "| data set | splits | calibration rows x test points | shipped search | "
        "means formed per test point | undecided means per test point | "
        + " | ".join(f"{label} (ms)" for label in labels)
        + " | extra over predict | least work: form + select (ms) | least work as a share of predict |",
        "|" + "---|" * (len(labels) + 9),
    ]
    for name in dict.fromkeys(r["data set"] for r in records):
        mine = [r for r in records if r["data set"] == name]
        median = {label: 1e3 * float(np.median([r[label] for r in mine])) for label in labels}
        size = f"{mine[0]['rows']:,} x {mine[0]['test']:,}"
        shipped = "one pass" if all(r["one pass shipped"] for r in mine) else "pruned"
        extra = median["shipped"] / median["predict"] - 1
        per_point = float(np.median([r["values per point"] for r in mine]))
        undecided_ = float(np.median([r["undecided per point"] for r in mine]))
        least = 1e3 * float(np.median([r["least work"] for r in mine]))
        lines.append(f"| {name} | {len(mine)} | {size} | {shipped} | {per_point:,.0f} | "
                     f"{undecided_:,.0f} | "
                     + " | ".join(f"{median[label]:.2f}" for label in labels)
                     + f" | {extra:+.0%} | {least:.2f} | {least / median['predict']:.0%} |")
    worst = max(r["difference"] for r in records)
    lines.append("")
    lines.append(f"Largest difference of any variant's ends from the one pass's: {worst:.1e} "
                 "of the target's standard deviation.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder of the UCI sets "
                        "(default: $SKLEARN_RPF_UCI or <repo>/../shared/uci)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--splits", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--head-factors", nargs="+", type=float, default=[1.1, 1.5, 2.0])
    args = parser.parse_args(argv)
    if args.rounds < 1 or any(s < 0 or s > 19 for s in args.splits):
        parser.error("--rounds must be at least 1 and --splits between 0 and 19")
    if any(h < 1 for h in args.head_factors):
        parser.error("--head-factors must be at least 1 (the floor needs the selected rank)")
    data_dir = args.data_dir or default_data_dir()
    start = time.perf_counter()
    records = [measure(data_dir, name, split, args.rounds, args.head_factors)
               for name in args.datasets for split in args.splits]
    worst = max(r["difference"] for r in records)
    print(report(records, args.head_factors))
    print(f"\n{time.perf_counter() - start:.0f} s; medians of {args.rounds} alternating calls "
          "per split, then the median over the splits.")
    if worst > 1e-6:
        raise SystemExit(f"The variants' ends differ by {worst:.1e} of the target's standard "
                         "deviation: the search is not exact.")


if __name__ == "__main__":
    main()
