"""Members trained in groups, the groups spread over processes or machines with joblib.

Each group is vectorised as one skorch net (see :mod:`._training`); groups are independent, so they
run wherever joblib sends them: local processes (``n_jobs``), or a Dask cluster when the user
activates ``joblib.parallel_backend("dask")``. Because member ``k`` depends only on
``(random_state, k)`` and the shared batch order, the result is the same however the members are
grouped. The fitted groups are joined back into one ensemble.

The training arrays are sent to each worker once (see :func:`train_members`). Each worker runs
torch with the threads its process was given: joblib's loky workers set ``OMP_NUM_THREADS`` to
their share of the cores, and Dask's nanny-started workers set it to 1 (its default
``pre-spawn-environ``), which torch follows. Threads of one process (joblib's threading backend, a
Dask worker with several threads) serialise the blocks that fork torch's global generator.
"""

import sys
import warnings

import cloudpickle
import numpy as np
import torch
from joblib import Parallel, delayed, effective_n_jobs

from .._stack import caller_stacklevel
from .._workers import relax_worker_malloc
from ._priors import RandomizedPriorEnsemble
from ._training import TrainingData, make_net, train_module


def member_groups(n_members, n_groups):
    """Contiguous, near-equal groups of member indices."""
    n_groups = max(1, min(n_groups, n_members))
    return [list(map(int, group)) for group in np.array_split(np.arange(n_members), n_groups)]


def n_parallel_groups(n_jobs, n_members):
    """One group per parallel job, at most one per member.

    ``n_jobs=None`` follows the active joblib configuration: 1 by default, the cluster's threads
    inside ``joblib.parallel_backend("dask")``; but 1 in a task that already runs on a Dask worker
    (a grid search's fit): its members stay in that process, and nothing nests.
    """
    if n_jobs is None and _in_dask_worker():
        return 1
    return max(1, min(effective_n_jobs(n_jobs), n_members))


def _in_dask_worker():
    # Only a process that imported distributed can be a Dask worker: no import on every fit.
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:  # "No worker found": this is the client (or no Dask at all)
        return False
    return True


def _train_group(spec, members, x, y, weight, oob_weight, config, seed, keep_net=False):
    """One group, built from its members' streams and trained; runs on any worker."""
    relax_worker_malloc()  # in a Dask worker, training otherwise runs about 2x slower
    module = spec.build(members, seed, torch.as_tensor(x[:2]))
    net = train_module(module, TrainingData(x, y, weight, oob_weight), config, seed)
    if keep_net:  # the net and its module stay where they trained (a GPU, say)
        return net.module_, len(net.history), net
    # Sent back as bytes: distributed serialises an nn.Module field by field, past its
    # __getstate__, and a vmapped ensemble's meta-device skeleton then fails to deserialise
    # (the fit waited forever); bytes travel as they are. cloudpickle, as joblib and Dask use
    # for tasks: a lambda prior or a class defined in __main__ goes by value.
    return cloudpickle.dumps(net.module_.cpu()), len(net.history), None


def plan_groups(spec, seed, x, n_members, n_jobs):
    """Which members train together: one group per parallel job when the members can be
    vectorised, else one group per member (with a warning when ``vectorize="auto"`` fell back)."""
    if spec.vectorises(seed, torch.as_tensor(x[:2])):
        return member_groups(n_members, n_parallel_groups(n_jobs, n_members))
    if spec.vectorize == "auto" and n_members > 1:
        warnings.warn(
            "The member module could not be vectorised with torch.func.vmap; training the "
            "members independently (n_jobs parallel).", UserWarning, stacklevel=caller_stacklevel(),
        )
    return [[k] for k in range(n_members)]


def train_members(spec, x, y, weight, oob_weight, config, seed, n_jobs=None):
    """Build and train every member, in groups, and return one net holding them all.

    ``x`` and ``y`` go to every task as they are: joblib's Dask backend scatters such large
    arguments once per call and every task reuses them; locally, loky memory-maps them.

    Parameters
    ----------
    spec : EnsembleSpec
    x, y : ndarrays of shape (n, d) and (n, t)
        Standardised inputs (in the networks' dtype) and targets.
    weight, oob_weight : ndarrays of shape (n, K) (``oob_weight`` may be None)
    config : TrainingConfig
    seed : int
    n_jobs : int or None

    Returns
    -------
    net : EnsembleNet
        With a single group, the net that trained (its history is the training log); with
        several, a net around the joined members (empty history).
    n_epochs : int
        The most epochs any group ran.
    """
    groups = plan_groups(spec, seed, x, weight.shape[1], n_jobs)
    if len(groups) == 1:
        _, epochs, net = _train_group(spec, groups[0], x, y, weight, oob_weight, config, seed,
                                      keep_net=True)
        return net, epochs
    try:
        results = Parallel(n_jobs=n_jobs, verbose=config.verbose)(
            delayed(_train_group)(
                spec, group, x, y, weight[:, group],
                None if oob_weight is None else oob_weight[:, group],
                config, seed)  # make_net copies the user's callbacks for each group's net
            for group in groups
        )
    except Exception as exc:
        if type(exc).__name__ not in ("CancelledError", "FutureCancelledError"):
            raise
        # A Dask worker that held a group's scattered data died: the task cannot be retried.
        raise RuntimeError(
            f"Training on the cluster failed: a task was cancelled ({exc}). This usually means a "
            "worker was lost while it held a group's data (joblib scatters it to one worker, "
            "without a copy). The estimator is unchanged; fit again, on a stable cluster."
        ) from exc
    # Our own workers' bytes, from the processes joblib started for this call.
    module = RandomizedPriorEnsemble.concatenate(
        [cloudpickle.loads(blob) for blob, _, _ in results])
    net = make_net(module.to(config.device), config, len(x), seed, max_epochs=0)
    return net, max(epochs for _, epochs, _ in results)
