"""How fast does RandomizedPriorRegressor.fit train an ensemble? (issue 3, section 5)

One run, same data and same work for every variant: the 1-D two-cluster toy (40 rows,
``sklearn_rpf.datasets.make_two_clusters(random_state=0)``), 50 members,
100 full-batch epochs, Adam with the same learning rate, the regressor's default MLP (two hidden
layers of 50, ReLU) plus a frozen prior of the same architecture, prior_scale 1, bootstrap.

  (a) RandomizedPriorRegressor.fit (batch_size=None, no early stopping), all checks included;
  (b) a plain PyTorch loop, one member after the other, bootstrap by resampled row indices;
  (c) one skorch NeuralNetRegressor per member (module = trainable net + frozen prior);
  (d) a hand-written vectorised loop: stacked weights, batched matmuls, bootstrap counts as loss
      weights, prior outputs computed once; no skorch, no checks. The practical floor.

Variants run round-robin (a, b, c, d, a, b, ...) so that a slow spell of the shared machine hits all
of them; the table shows medians. Then 10 members on 100,000 rows x 10 features with mini-batches,
in a fresh subprocess, to measure the peak resident memory increment during fit.

    python -m benchmarks.bench_fit [--repeats 5] [--slow-repeats 3] [--threads 1]
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn

from sklearn_rpf.datasets import make_two_clusters

N_MEMBERS = 50
N_EPOCHS = 100
LR = 1e-2
HIDDEN = (50, 50)


def mlp(n_in, n_out):
    layers, sizes = [], [n_in, *HIDDEN, n_out]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


class WithPrior(nn.Module):
    """f(x) + beta * p(x), with p frozen."""

    def __init__(self, net, prior, beta=1.0):
        super().__init__()
        self.net, self.prior, self.beta = net, prior.requires_grad_(False), beta

    def forward(self, x):
        with torch.no_grad():
            p = self.prior(x)
        return self.net(x) + self.beta * p


def seeded(seed):
    """nn.Linear initialises from torch's global generator: fork it so the caller's is untouched."""
    ctx = torch.random.fork_rng(devices=[])
    ctx.__enter__()
    torch.manual_seed(seed)
    return ctx


def normalized(y):
    return (y - y.mean()) / y.std()


# --------------------------------------------------------------------------- the four variants
def fit_regressor(X, y, seed):
    from sklearn_rpf import RandomizedPriorRegressor

    RandomizedPriorRegressor(
        n_estimators=N_MEMBERS, max_epochs=N_EPOCHS, lr=LR, batch_size=None,
        hidden_layer_sizes=HIDDEN, early_stopping=False, random_state=seed,
        lr_schedule="constant", weight_decay=0.0, prior_scale=1.0,  # the loops' steps
    ).fit(X, y)


def fit_torch_loop(X, y, seed):
    x = torch.as_tensor(X, dtype=torch.float32)
    t = torch.as_tensor(normalized(y), dtype=torch.float32)[:, None]
    rng = np.random.default_rng(seed)
    ctx = seeded(seed)
    try:
        for _ in range(N_MEMBERS):
            model = WithPrior(mlp(1, 1), mlp(1, 1))
            idx = torch.as_tensor(rng.integers(0, len(x), len(x)))
            xb, tb = x[idx], t[idx]
            optimizer = torch.optim.Adam(model.net.parameters(), lr=LR)
            for _ in range(N_EPOCHS):
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(model(xb), tb)
                loss.backward()
                optimizer.step()
    finally:
        ctx.__exit__(None, None, None)


def fit_skorch_loop(X, y, seed):
    from skorch import NeuralNetRegressor

    x = X.astype(np.float32)
    t = normalized(y).astype(np.float32)[:, None]
    rng = np.random.default_rng(seed)
    ctx = seeded(seed)
    try:
        for _ in range(N_MEMBERS):
            idx = rng.integers(0, len(x), len(x))
            NeuralNetRegressor(
                module=WithPrior(mlp(1, 1), mlp(1, 1)), optimizer=torch.optim.Adam, lr=LR,
                max_epochs=N_EPOCHS, batch_size=-1, train_split=None, verbose=0,
            ).fit(x[idx], t[idx])
    finally:
        ctx.__exit__(None, None, None)


def stacked_mlp(K, sizes, generator):
    """Weights (K, fan_in, fan_out) and biases (K, 1, fan_out), nn.Linear's uniform init."""
    params = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        bound = a**-0.5
        for shape in ((K, a, b), (K, 1, b)):
            params.append(((torch.rand(shape, generator=generator) * 2 - 1) * bound).requires_grad_())
    return params


def stacked_forward(params, x):
    h = torch.matmul(x, params[0]) + params[1]  # (n, d) @ (K, d, h) -> (K, n, h)
    for i in range(2, len(params), 2):
        h = torch.baddbmm(params[i + 1], torch.relu(h), params[i])
    return h  # (K, n, o)


def fit_vectorised(X, y, seed):
    x = torch.as_tensor(X, dtype=torch.float32)
    t = torch.as_tensor(normalized(y), dtype=torch.float32)[None, :, None]
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, len(x), len(x)), minlength=len(x))
                       for _ in range(N_MEMBERS)])
    weight = torch.as_tensor(counts, dtype=torch.float32)[..., None]  # (K, n, 1)
    generator = torch.Generator().manual_seed(seed)
    sizes = [1, *HIDDEN, 1]
    params = stacked_mlp(N_MEMBERS, sizes, generator)
    with torch.no_grad():
        prior = stacked_forward([p.detach() for p in stacked_mlp(N_MEMBERS, sizes, generator)], x)
    optimizer = torch.optim.Adam(params, lr=LR, fused=True)  # as the regressor uses it
    total = weight.sum(dim=(1, 2))
    for _ in range(N_EPOCHS):
        optimizer.zero_grad()
        residual = t - (stacked_forward(params, x) + prior)
        loss = ((weight * residual**2).sum(dim=(1, 2)) / total).sum()
        loss.backward()
        optimizer.step()


VARIANTS = {
    "a": ("RandomizedPriorRegressor.fit", fit_regressor),
    "b": ("per-member PyTorch loop", fit_torch_loop),
    "c": ("per-member skorch loop", fit_skorch_loop),
    "d": ("vectorised pure torch (floor)", fit_vectorised),
}


def time_variants(repeats, slow_repeats):
    X, y = make_two_clusters(random_state=0)
    for _, fn in VARIANTS.values():  # warm-up: imports, first-call allocations
        fn(X[:8], y[:8], 0) if fn in (fit_torch_loop, fit_skorch_loop) else fn(X, y, 0)
    times = {key: [] for key in VARIANTS}
    for r in range(repeats):
        for key, (_, fn) in VARIANTS.items():
            if key in "bc" and r >= slow_repeats:
                continue
            start = time.perf_counter()
            fn(X, y, r + 1)
            times[key].append(time.perf_counter() - start)
    return times


# --------------------------------------------------------------------------- kin8nm's size
def kin8nm_training_rows():
    """kin8nm's published training split 0 (7,373 rows x 8 features), standardised X."""
    from ._uci_data import default_data_dir, load_split

    X, y, _, _ = load_split(default_data_dir(), "kin8nm", 0)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def fit_regressor_defaults(X, y, seed):
    from sklearn_rpf import RandomizedPriorRegressor

    RandomizedPriorRegressor(random_state=seed).fit(X, y)


def fit_vectorised_minibatch(X, y, seed):
    """The regressor's default training, written by hand: the same members, prior, bootstrap
    weights, batches per epoch, epochs, Adam and learning-rate schedule; no skorch, no checks, no
    calibration."""
    from sklearn_rpf import RandomizedPriorRegressor
    from sklearn_rpf.ensemble._training import resolve_batch_size, resolve_epochs

    defaults = RandomizedPriorRegressor().get_params()
    K, lr = defaults["n_estimators"], defaults["lr"]
    n = len(X)
    batch = resolve_batch_size(defaults["batch_size"], n)
    epochs = resolve_epochs(defaults["max_epochs"], n, batch)
    x = torch.as_tensor(X, dtype=torch.float32)
    t = torch.as_tensor(normalized(y), dtype=torch.float32)[:, None]
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(K)], axis=1)
    weight = torch.as_tensor(counts, dtype=torch.float32)  # (n, K)
    generator = torch.Generator().manual_seed(seed)
    sizes = [X.shape[1], *defaults["hidden_layer_sizes"], 1]
    params = stacked_mlp(K, sizes, generator)
    with torch.no_grad():
        prior = defaults["prior_scale"] * stacked_forward(
            [p.detach() for p in stacked_mlp(K, sizes, generator)], x)[..., 0].T  # (n, K)
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=defaults["weight_decay"], fused=True)
    steps_per_epoch = -(-n // batch)
    total, step = epochs * steps_per_epoch, 0
    cosine = defaults["lr_schedule"] == "cosine"
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch):
            rows = order[start:start + batch]
            w, target = weight[rows], t[rows]
            optimizer.zero_grad()
            out = stacked_forward(params, x[rows])[..., 0].T + prior[rows]  # (b, K)
            loss = ((w * (target - out) ** 2).sum(0) / w.sum(0).clamp_min(1e-12)).sum()
            loss.backward()
            optimizer.step()
            step += 1
            if cosine:
                optimizer.param_groups[0]["lr"] = lr * 0.5 * (1 + np.cos(np.pi * step / total))


def time_kin8nm(repeats):
    X, y = kin8nm_training_rows()
    fit_regressor_defaults(X[:500], y[:500], 0)  # warm-up
    times = {"a": [], "d": []}
    for r in range(repeats):
        for key, fn in (("a", fit_regressor_defaults), ("d", fit_vectorised_minibatch)):
            start = time.perf_counter()
            fn(X, y, r + 1)
            times[key].append(time.perf_counter() - start)
    return times


# --------------------------------------------------------------------------- memory, large data
LARGE_CHILD = """
import json, sys, time
import numpy as np, torch
torch.set_num_threads({threads})
from sklearn_rpf import RandomizedPriorRegressor

def peak_kib():  # VmHWM: this process's own peak (ru_maxrss is inherited across fork/exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))

rng = np.random.default_rng(0)
X = rng.normal(size=({n}, {d}))
y = X @ rng.normal(size={d}) + np.sin(X[:, 0]) + 0.1 * rng.normal(size={n})
reg = RandomizedPriorRegressor(n_estimators={k}, max_epochs={epochs}, batch_size={batch},
                               random_state=0)
reg.fit(X[:256], y[:256])  # warm-up: allocator pools, lazy imports
before = peak_kib()
start = time.perf_counter()
reg.fit(X, y)
seconds = time.perf_counter() - start
after = peak_kib()
print(json.dumps(dict(seconds=seconds, before_kib=before, after_kib=after,
                      data_bytes=X.nbytes + y.nbytes)))
"""


def large_run(threads, n=100_000, d=10, k=10, epochs=3, batch=1024):
    code = LARGE_CHILD.format(threads=threads, n=n, d=d, k=k, epochs=epochs, batch=batch)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out.update(n=n, d=d, k=k, epochs=epochs, batch=batch)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="repeats of (a) and (d)")
    parser.add_argument("--slow-repeats", type=int, default=3, help="repeats of (b) and (c)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, all variants")
    parser.add_argument("--skip-large", action="store_true", help="skip the 100,000-row run")
    parser.add_argument("--skip-kin8nm", action="store_true", help="skip the kin8nm-size run")
    parser.add_argument("--kin8nm-repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} torch thread(s); {N_MEMBERS} members x {N_EPOCHS} full-batch epochs "
          f"on 40 rows, MLP {HIDDEN} + frozen MLP prior, Adam lr={LR}\n")

    times = time_variants(args.repeats, args.slow_repeats)
    med = {key: statistics.median(values) for key, values in times.items()}
    print("| variant | median fit time (s) | repeats | all runs (s) |")
    print("|---|---:|---:|---|")
    for key, (name, _) in VARIANTS.items():
        runs = ", ".join(f"{v:.2f}" for v in times[key])
        print(f"| ({key}) {name} | {med[key]:.3f} | {len(times[key])} | {runs} |")
    print()
    print("| ratio | value | target |")
    print("|---|---:|---|")
    print(f"| (c)/(a): skorch loop / regressor | {med['c'] / med['a']:.1f}x | >= 20x |")
    print(f"| (a)/(d): regressor / vectorised floor | {med['a'] / med['d']:.2f}x | <= 1.3x |")
    print(f"| (b)/(a): torch loop / regressor | {med['b'] / med['a']:.1f}x | |")

    if not args.skip_kin8nm:
        from sklearn_rpf import RandomizedPriorRegressor
        from sklearn_rpf.ensemble._training import resolve_batch_size, resolve_epochs

        defaults = RandomizedPriorRegressor().get_params()
        batch = resolve_batch_size(defaults["batch_size"], 7373)
        epochs = resolve_epochs(defaults["max_epochs"], 7373, batch)
        k_times = time_kin8nm(args.kin8nm_repeats)
        k_med = {key: statistics.median(v) for key, v in k_times.items()}
        print(f"\nkin8nm's size: training split 0, 7,373 rows x 8 features; the regressor's defaults "
              f"({defaults['n_estimators']} members, batch {batch}, {epochs} epochs = "
              f"{epochs * -(-7373 // batch):,} steps, lr {defaults['lr']}, "
              f"{defaults['lr_schedule']} schedule)\n")
        print("| variant | median fit time (s) | repeats | all runs (s) |")
        print("|---|---:|---:|---|")
        for key, name in (("a", "RandomizedPriorRegressor().fit, defaults, all checks and calibration"),
                          ("d", "the same training written by hand in torch (floor)")):
            runs = ", ".join(f"{v:.2f}" for v in k_times[key])
            print(f"| ({key}) {name} | {k_med[key]:.2f} | {len(k_times[key])} | {runs} |")
        print(f"\n| ratio | value | target |\n|---|---:|---|\n"
              f"| (a)/(d) at kin8nm's size | {k_med['a'] / k_med['d']:.2f}x | <= 1.3x |")

    if not args.skip_large:
        big = large_run(args.threads)
        increment = (big["after_kib"] - big["before_kib"]) / 1024
        data = big["data_bytes"] / 2**20
        print()
        print("| large fit | value |")
        print("|---|---:|")
        print(f"| data | {big['n']:,} rows x {big['d']} features, {data:.1f} MiB (float64 X and y) |")
        print(f"| ensemble | {big['k']} members, batch_size={big['batch']}, {big['epochs']} epochs |")
        print(f"| fit time | {big['seconds']:.2f} s |")
        print(f"| peak RSS increment during fit | {increment:.1f} MiB ({increment / data:.1f}x the data) |")
        print(f"| peak RSS of the process | {big['after_kib'] / 1024:.0f} MiB |")


if __name__ == "__main__":
    main()
