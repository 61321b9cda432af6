"""BenfordDigitProbe on a real Dask cluster (two worker processes): it ships by reference.

Needs the ``dask`` extra (dask, distributed, pandas); skipped without it.
"""

import importlib
import importlib.util
import logging
import os
import pickle
import sys

import numpy as np
import pandas as pd
import pytest
import torch

# Skipped only where the [dask] extra is not installed; an installed one must import.
if not all(importlib.util.find_spec(name) for name in ("dask", "distributed")):
    pytest.skip("the [dask] extra is not installed", allow_module_level=True)
importlib.import_module("distributed")
importlib.import_module("dask.dataframe")
import cloudpickle  # noqa: E402
import dask.bag as db  # noqa: E402
import dask.dataframe as dd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from lm_fixtures import MIXED_PROMPTS  # noqa: E402

from sklearn_rpf.benford import BenfordDigitProbe, _lm_loading  # noqa: E402

# Helpers defined here run on the workers, which cannot import this test module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

PROMPTS = [*MIXED_PROMPTS, "The lake has a surface area of"] * 3


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", worker_dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster:
        with Client(cluster) as client:
            yield client


def _worker_state():
    """What a worker's process looks like: torch threads, the nanny's setting, models loaded."""
    return {
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "loads": _lm_loading._load_source.cache_info().misses,
        "pid": os.getpid(),
    }


def test_probe_on_a_dask_bag_equals_a_local_transform(client, tiny_lm_folder):
    probe = BenfordDigitProbe(tiny_lm_folder, batch_size=4).fit(PROMPTS)
    local = probe.transform(PROMPTS)
    assert len(cloudpickle.dumps(probe)) < 20_000  # the model itself does not travel
    assert len(pickle.dumps(probe.model_.state_dict())) > 50_000

    bag = db.from_sequence(PROMPTS, npartitions=4)
    remote = np.array(bag.map_partitions(probe.transform).compute())
    np.testing.assert_allclose(remote, local, atol=1e-6, rtol=0)

    states = list(client.run(_worker_state).values())
    assert len({s["pid"] for s in states}) == 2 and os.getpid() not in {s["pid"] for s in states}
    # Four partitions, two workers: each loaded the model once from the folder (or not at all,
    # if the scheduler gave it no partition), then reused it.
    assert all(s["loads"] <= 1 for s in states) and sum(s["loads"] for s in states) >= 1
    # One task at a time per worker (threads_per_worker=1) and the nanny's OMP_NUM_THREADS=1:
    # torch uses one thread per worker, so two workers fill the two cores without oversubscribing.
    assert all(s["torch_threads"] == 1 and s["OMP_NUM_THREADS"] == "1" for s in states)


def test_probe_on_a_dask_dataframe(client, tiny_lm_folder):
    frame = pd.DataFrame({"city": ["Springfield", "Riverside", "Lakeside", "Hill Valley"] * 3})
    probe = BenfordDigitProbe(tiny_lm_folder, template="The town of {0} has a population of")
    probe.set_output(transform="pandas").fit(frame)
    local = probe.transform(frame)
    meta = pd.DataFrame({name: pd.Series(dtype=float) for name in probe.get_feature_names_out()})
    remote = dd.from_pandas(frame, npartitions=3).map_partitions(probe.transform, meta=meta)
    result = remote.compute()
    pd.testing.assert_index_equal(result.index, local.index)
    np.testing.assert_allclose(result.to_numpy(), local.to_numpy(), atol=1e-6, rtol=0)
