"""Peer methods that cannot share the main environment, run in their own (``.venv-peers``).

NGBoost 0.6.0 (the latest release when this was written) requires ``scikit-learn<1.7`` on
Python below 3.14: ``pip install --dry-run ngboost`` in the main environment (scikit-learn
1.9.1, Python 3.11.7) would install ngboost 0.6.0 with scikit-learn 1.6.1 and pandas 2.3.3,
downgrading both. So ``make peers`` (part of ``make benchmarks``) creates ``.venv-peers`` from
``benchmarks/requirements-peers.txt`` (there: ngboost 0.6.0, scikit-learn 1.6.1, numpy 2.4.6),
and the benchmarks run NGBoost through it in a subprocess::

    .venv-peers/bin/python -m benchmarks.peers check              # versions, as JSON
    .venv-peers/bin/python -m benchmarks.peers ngboost IN.npz OUT.npz '{"n_estimators": 500}'

``IN.npz`` holds ``X_train_<i>``, ``y_train_<i>``, ``X_test_<i>`` and ``seed_<i>`` for each job
``i`` (several fits per process: importing ngboost alone takes about 5 s); ``OUT.npz`` gets
``mean_<i>`` and ``std_<i>`` of the predicted Normal on ``X_test_<i>``, and the fit and predict
seconds of each job (measured inside the peer process, without its start-up).

(MAPIE 1.6.0 installs in the main environment without changing anything, so it is in the
``bench`` extra and runs in the main process; see ``benchmarks/_intervals.py``.)

The side that runs in the peers' environment (``main``) imports only NumPy and NGBoost; the
client side (``find_python``, ``check``, ``ngboost_fit_predict``) only the standard library and
NumPy.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ENV_VAR = "SKLEARN_RPF_PEERS_PYTHON"
DEFAULT_VENV = Path(__file__).resolve().parent.parent / ".venv-peers"
# NGBoost's own defaults (Normal distribution, LogScore, depth-3 trees, learning rate 0.01),
# spelled out where the issue names them.
NGBOOST_DEFAULTS = {"n_estimators": 500}
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class PeersUnavailable(RuntimeError):
    """The peers' environment is missing or broken; the message says how to set it up."""


# ---------------------------------------------------------------------------- client side
def find_python(explicit=None):
    """The peers' interpreter: ``explicit``, else ``$SKLEARN_RPF_PEERS_PYTHON``, else
    ``<repo>/.venv-peers/bin/python``."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return DEFAULT_VENV / "bin" / "python"


def shown(python):
    """``python`` relative to the repository when it lies inside it (for the record)."""
    root = Path(__file__).resolve().parent.parent
    python = Path(python).absolute()
    return str(python.relative_to(root)) if python.is_relative_to(root) else str(python)


def _run(python, args, one_thread=False, timeout=None):
    python = Path(python)
    if not python.is_file():
        raise PeersUnavailable(
            f"no peers environment at {python}: NGBoost rows skipped. Run `make peers` "
            f"(creates .venv-peers with ngboost), or pass --peers-python / set {ENV_VAR}."
        )
    env = dict(os.environ)
    if one_thread:
        env.update(dict.fromkeys(_THREAD_VARIABLES, "1"))
    # The repository root as the working directory: `-m benchmarks.peers` imports this file.
    result = subprocess.run(
        [str(python), "-m", "benchmarks.peers", *args], cwd=Path(__file__).resolve().parent.parent,
        env=env, capture_output=True, text=True, timeout=timeout,
    )
    if result.returncode:
        raise PeersUnavailable(
            f"{python} -m benchmarks.peers {args[0]} failed (exit {result.returncode}): "
            + result.stderr.strip()[-2000:]
        )
    return result.stdout


def check(python):
    """Versions in the peers' environment (a dict); raises PeersUnavailable if it is unusable."""
    return json.loads(_run(python, ["check"]).strip().splitlines()[-1])


def resolve(explicit, params, seed):
    """``(python, note)`` for a benchmark run: the peers' interpreter and a line for the record,
    or ``(None, why)`` (also printed) when the environment is missing or broken."""
    python = find_python(explicit)
    try:
        versions = check(python)
    except PeersUnavailable as exc:
        print(f"NGBoost skipped: {exc}", file=sys.stderr)
        return None, f"skipped ({exc})"
    params = {**NGBOOST_DEFAULTS, **params}
    return str(python), (
        f"`NGBRegressor({', '.join(f'{k}={v!r}' for k, v in params.items())})`, Normal, its other "
        f"defaults, `random_state` {seed}; run in {shown(python)} (ngboost {versions['ngboost']}, "
        f"scikit-learn {versions['scikit-learn']})")


def ngboost_fit_predict(python, jobs, params=None):
    """Fit ``NGBRegressor(**NGBOOST_DEFAULTS, **params, random_state=seed)`` per job, on one thread.

    ``jobs``: dicts with ``X_train``, ``y_train``, ``X_test`` and ``seed``. Returns one dict
    per job with ``mean`` and ``std`` (arrays over ``X_test``), ``fit_time``, ``predict_time``.
    """
    params = {**NGBOOST_DEFAULTS, **(params or {})}
    with tempfile.TemporaryDirectory(prefix="sklearn-rpf-peers-") as folder:
        inputs, outputs = Path(folder) / "in.npz", Path(folder) / "out.npz"
        arrays = {}
        for i, job in enumerate(jobs):
            arrays.update({f"X_train_{i}": np.asarray(job["X_train"], dtype=float),
                           f"y_train_{i}": np.asarray(job["y_train"], dtype=float),
                           f"X_test_{i}": np.asarray(job["X_test"], dtype=float),
                           f"seed_{i}": np.asarray(int(job["seed"]))})
        np.savez(inputs, n_jobs=np.asarray(len(jobs)), **arrays)
        _run(python, ["ngboost", str(inputs), str(outputs), json.dumps(params)], one_thread=True)
        with np.load(outputs, allow_pickle=False) as out:
            return [{"mean": out[f"mean_{i}"], "std": out[f"std_{i}"],
                     "fit_time": float(out["fit_time"][i]),
                     "predict_time": float(out["predict_time"][i])} for i in range(len(jobs))]


# ---------------------------------------------------------------------------- peer side
def _versions():
    import ngboost
    import sklearn

    return {"python": sys.version.split()[0], "ngboost": ngboost.__version__,
            "scikit-learn": sklearn.__version__, "numpy": np.__version__}


def _ngboost(inputs, outputs, params):
    from ngboost import NGBRegressor
    from ngboost.distns import Normal

    results, fit_times, predict_times = {}, [], []
    with np.load(inputs, allow_pickle=False) as data:
        for i in range(int(data["n_jobs"])):
            model = NGBRegressor(Dist=Normal, verbose=False, random_state=int(data[f"seed_{i}"]),
                                 **params)
            start = time.perf_counter()
            model.fit(data[f"X_train_{i}"], data[f"y_train_{i}"])
            fit_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            dist = model.pred_dist(data[f"X_test_{i}"])
            results[f"mean_{i}"], results[f"std_{i}"] = dist.params["loc"], dist.params["scale"]
            predict_times.append(time.perf_counter() - start)
    np.savez(outputs, fit_time=np.asarray(fit_times), predict_time=np.asarray(predict_times),
             **results)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:
        print(json.dumps(_versions()))
    elif argv[:1] == ["ngboost"] and len(argv) == 4:
        _ngboost(argv[1], argv[2], json.loads(argv[3]))
    else:
        raise SystemExit("usage: python -m benchmarks.peers check | ngboost IN.npz OUT.npz PARAMS_JSON")


if __name__ == "__main__":
    main()
