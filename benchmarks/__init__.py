"""Benchmarks of sklearn-rpf, run as modules from the repository root.

    python -m benchmarks.bench_fit       # fit time against a hand-written vectorised loop
    python -m benchmarks.bench_probe     # BenfordDigitProbe throughput
    python -m benchmarks.uci             # UCI regression splits: NLL, intervals, NGBoost, MAPIE
    python -m benchmarks.shift           # gap and extrapolation splits of the UCI sets
    python -m benchmarks.tune_defaults   # the search for the defaults (validation splits only)

``make benchmarks`` sets up both environments and runs them all; ``benchmarks.peers`` is the
side that runs in the peers' own environment (``.venv-peers``). Importing this package imports
nothing heavy: each module is a script first.
"""
