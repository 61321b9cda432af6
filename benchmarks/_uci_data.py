"""Loading the UCI regression sets and their published train/test splits (see shared/uci/README.md)."""

import functools
import os
from pathlib import Path

import numpy as np

DATASETS = ("concrete", "energy", "kin8nm", "wine-quality-red", "yacht")
ENV_VAR = "SKLEARN_RPF_UCI"


def default_data_dir():
    """``$SKLEARN_RPF_UCI``, else ``<repo>/../shared/uci`` (relative to this file, not the cwd)."""
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "uci"


def check_data_dir(data_dir, datasets):
    """Fail early, naming what is missing, rather than deep inside a worker."""
    data_dir = Path(data_dir)
    missing = [name for name in datasets if not (data_dir / name / "data.txt").is_file()]
    if missing:
        raise FileNotFoundError(
            f"UCI data not found for {missing} under {data_dir}; expected <dir>/<name>/data.txt "
            f"with its index files. Pass --data-dir or set {ENV_VAR}."
        )
    return data_dir


def known_datasets(data_dir=None):
    """The shipped sets, then any other folder of ``data_dir`` in the same layout (e.g. the
    sets ``python -m benchmarks.unshipped`` writes)."""
    folder = Path(data_dir or default_data_dir())
    others = sorted(p.parent.name for p in folder.glob("*/data.txt")) if folder.is_dir() else []
    return [*DATASETS, *(name for name in others if name not in DATASETS)]


def n_splits(data_dir, name):
    return int(np.loadtxt(Path(data_dir) / name / "n_splits.txt"))


@functools.lru_cache(maxsize=8)
def load_dataset(data_dir, name):
    """Features ``X`` (n, d) and target ``y`` (n,) of one data set, as float64."""
    folder = Path(data_dir) / name
    data = np.loadtxt(folder / "data.txt", ndmin=2)
    features = np.loadtxt(folder / "index_features.txt", dtype=int, ndmin=1)
    target = int(np.loadtxt(folder / "index_target.txt", dtype=int))
    return data[:, features], data[:, target]


def split_indices(data_dir, name, split, part):
    """Row indices of the ``part`` ("train" or "test") of published split ``split``."""
    return np.loadtxt(Path(data_dir) / name / f"index_{part}_{split}.txt", dtype=int, ndmin=1)


def load_split(data_dir, name, split):
    """``(X_train, y_train, X_test, y_test)`` of published split ``split``."""
    X, y = load_dataset(str(data_dir), name)
    train = split_indices(data_dir, name, split, "train")
    test = split_indices(data_dir, name, split, "test")
    return X[train], y[train], X[test], y[test]


def inner_split(data_dir, name, split, seed=0, max_rows=None, validation=0.2):
    """``(X_fit, y_fit, X_val, y_val)`` carved out of the TRAINING part of split ``split`` only.

    Inside outer training split ``split``, a seeded (``default_rng([seed, split])``) subset of
    at most ``max_rows`` rows (all if None), then a seeded ``validation`` share held out: for
    choosing settings without ever reading a test split.
    """
    from sklearn.model_selection import train_test_split

    X, y = load_dataset(str(data_dir), name)
    train = split_indices(data_dir, name, split, "train")
    rng = np.random.default_rng([seed, split])
    if max_rows and max_rows < len(train):
        train = rng.choice(train, size=max_rows, replace=False)
    X_fit, X_val, y_fit, y_val = train_test_split(
        X[train], y[train], test_size=validation, random_state=int(rng.integers(2**31 - 1))
    )
    return X_fit, y_fit, X_val, y_val
