"""The regressor on a Dask cluster: member groups on workers, grid search, Incremental."""

import importlib
import importlib.util

import numpy as np
import pytest
from joblib import Parallel, delayed, parallel_backend, parallel_config
from sklearn.model_selection import GridSearchCV

from sklearn_rpf import RandomizedPriorRegressor

# Skipped only where the [dask] extra is not installed: an installed one that fails to import
# (dask-ml before 2025.1 needs pkg_resources, which setuptools 84 no longer has) must fail.
if not all(importlib.util.find_spec(name) for name in ("dask", "distributed", "dask_ml")):
    pytest.skip("the [dask] extra is not installed", allow_module_level=True)
distributed = importlib.import_module("distributed")
da = importlib.import_module("dask.array")
dask_ml_wrappers = importlib.import_module("dask_ml.wrappers")

FAST = dict(n_estimators=4, max_epochs=15, lr=1e-2, hidden_layer_sizes=(16,), random_state=0)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", worker_dashboard_address=":0")
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


def data(n=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X[:, 0] - np.sin(2 * X[:, 1]) + 0.1 * rng.normal(size=n)


def test_workers_run_torch_on_their_own_cores(client):
    import torch  # noqa: F401 - imported on the workers below

    threads = client.run(lambda: __import__("torch").get_num_threads())
    assert set(threads.values()) == {1}  # threads_per_worker=1: no oversubscription


def test_members_trained_on_the_cluster_equal_a_local_fit(client, monkeypatch):
    X, y = data()
    local = RandomizedPriorRegressor(**FAST).fit(X, y)
    scattered = []
    original = client.scatter

    def recording_scatter(data, *args, **kwargs):
        scattered.append(getattr(data, "shape", None))
        return original(data, *args, **kwargs)

    monkeypatch.setattr(client, "scatter", recording_scatter)
    with parallel_backend("dask"):
        remote = RandomizedPriorRegressor(**dict(FAST, n_jobs=4)).fit(X, y)
    monkeypatch.undo()
    # 2 workers, 4 members: groups of members trained apart, joined into one ensemble.
    assert len(remote.estimators_) == 4 and len(remote.ensemble_.history) == 0
    np.testing.assert_allclose(remote.predict_members(X), local.predict_members(X), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(remote.predict(X, return_std=True), local.predict(X, return_std=True),
                               rtol=1e-5, atol=1e-5)
    # The training inputs went to the cluster once, not once per group.
    assert scattered.count((300, 4)) == 1, scattered


def test_grid_search_on_the_cluster(client):
    X, y = data()
    search = GridSearchCV(RandomizedPriorRegressor(**FAST), {"prior_scale": [0.0, 1.0]}, cv=2)
    with parallel_backend("dask"):
        search.fit(X, y)  # folds x candidates on the workers; members in each task's process
    with parallel_config(n_jobs=1):
        local = GridSearchCV(RandomizedPriorRegressor(**FAST), {"prior_scale": [0.0, 1.0]},
                             cv=2).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"], rtol=1e-5)


def test_a_task_on_a_worker_keeps_its_members_in_its_process(client):
    # A grid search's fit runs as a task on a worker: n_jobs=None there is one group, not the
    # cluster's threads again (8 nested tasks for 4 fits, in the case that found it).
    from sklearn_rpf.ensemble import _groups

    with parallel_backend("dask"):
        assert _groups.n_parallel_groups(None, 4) == 2  # the client: the cluster's two threads
        on_workers = Parallel(n_jobs=2)(delayed(_groups.n_parallel_groups)(None, 4)
                                        for _ in range(2))
    assert on_workers == [1, 1]


def test_a_lost_worker_is_said_and_leaves_the_model_as_it_was(monkeypatch):
    # joblib scatters a group's data to one worker; when that worker dies, Dask cancels the task
    # with "already forgotten". Simulated here: the same exception type name, raised by Parallel.
    from sklearn_rpf.ensemble import _groups

    class FutureCancelledError(Exception):
        pass

    def cancelled(*args, **kwargs):
        def run(tasks):
            list(tasks)
            raise FutureCancelledError("batch_of__train_group cancelled: already forgotten")
        return run

    X, y = data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    before = reg.predict(X, return_std=True)
    monkeypatch.setattr(_groups, "Parallel", cancelled)
    with pytest.raises(RuntimeError, match="a worker was lost.*The estimator is unchanged"):
        reg.set_params(n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(reg.predict(X, return_std=True), before)


def test_incremental_over_a_dask_array(client):
    X, y = data(n=800)
    dX = da.from_array(X, chunks=(200, 4))
    dy = da.from_array(y, chunks=200)
    model = dask_ml_wrappers.Incremental(RandomizedPriorRegressor(**dict(FAST, batch_size=50)),
                                         shuffle_blocks=False)
    model.fit(dX, dy)
    fitted = model.estimator_
    assert fitted.n_samples_seen_ == 800 and fitted.n_epochs_ == 4
    # The same chunks through a plain loop give the same model.
    loop = RandomizedPriorRegressor(**dict(FAST, batch_size=50))
    for start in range(0, 800, 200):
        loop.partial_fit(X[start:start + 200], y[start:start + 200])
    np.testing.assert_allclose(fitted.predict(X, return_std=True), loop.predict(X, return_std=True),
                               rtol=1e-5, atol=1e-6)
    assert fitted.score(X, y) > 0.3  # one pass
    # dask-ml scores with the estimator's own score, which reads the dask arrays' chunks as
    # arrays (dask-ml's r2_score, used for a plain RegressorMixin.score, fails on them).
    assert model.score(dX, dy) == pytest.approx(fitted.score(X, y), rel=1e-6)


@pytest.mark.parametrize("env, changed", [({"MALLOC_TRIM_THRESHOLD_": "65536"}, True),
                                          ({}, False),
                                          ({"MALLOC_TRIM_THRESHOLD_": "65536",
                                            "MALLOC_MMAP_THRESHOLD_": "131072"}, False)])
def test_worker_malloc_is_relaxed_only_where_dask_froze_it(env, changed):
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_, which freezes glibc's mmap threshold at 128 KiB
    # (training ran 2x slower); a user's own MALLOC_MMAP_THRESHOLD_ is left alone.
    import os
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's mallopt")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    code = "from sklearn_rpf._workers import relax_worker_malloc as r; print(r(), r())"
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out == [str(changed)] * 2


def test_cluster_workers_get_the_relaxed_malloc(client):
    X, y = data()
    with parallel_backend("dask"):
        RandomizedPriorRegressor(**dict(FAST, n_jobs=2)).fit(X, y)
    from sklearn_rpf._workers import relax_worker_malloc

    called = client.run(lambda: relax_worker_malloc.cache_info().currsize)
    assert max(called.values()) == 1  # the workers that trained a group called it
    # and there it acted: Dask's nanny set the trim threshold in every worker
    assert set(client.run(relax_worker_malloc).values()) == {True}


def test_a_module_class_trains_on_the_cluster(client):
    # distributed serialises an nn.Module field by field, past its __getstate__: a vmapped
    # ensemble's meta-device skeleton failed to deserialise and the fit waited forever.
    from functools import partial

    from sklearn_rpf.ensemble._networks import MLP

    X, y = data(100)
    params = dict(FAST, module=partial(MLP, hidden_layer_sizes=(8,)), prior=MLP, n_jobs=2)
    local = RandomizedPriorRegressor(**params).fit(X, y)
    with parallel_backend("dask"):
        remote = RandomizedPriorRegressor(**params).fit(X, y)
    np.testing.assert_allclose(remote.predict(X, return_std=True), local.predict(X, return_std=True),
                               rtol=1e-5, atol=1e-5)
