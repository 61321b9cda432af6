"""Random streams of the ensemble: one per member and purpose, never the global generators.

Member ``k``'s initial weights, its prior and its bootstrap draws come from streams keyed by
``(seed, purpose, k)`` only, so that a member is the same whether it is trained alone, in a group
of three or with the whole ensemble, in this process or on another machine. The mini-batch order
is shared by every member (one stream keyed by ``(seed, "shuffle")``): a vectorised group needs one
batch at a time for all its members. Layers that draw at training time (dropout) draw from
torch's global generator, forked and seeded from ``(seed, "dropout")`` for the group: their masks
depend on the group, so such members are reproducible but not independent of the grouping.
"""

import contextlib
import threading
from numbers import Integral

import numpy as np
import torch

# Fixed numbers, not hash() of the names: str hashes change from one process to the next.
_PURPOSES = {"init": 1, "prior": 2, "bootstrap": 3, "shuffle": 4, "draws": 5, "dropout": 6,
             "checks": 7, "calibration": 8}


def seed_from(random_state):
    """One integer seed from ``random_state``; None draws fresh OS entropy (no global state)."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if (isinstance(random_state, bool) or not isinstance(random_state, Integral)
            or not 0 <= random_state < 2**32):
        raise ValueError(
            "random_state must be None, an int in [0, 2**32 - 1] or a numpy.random.RandomState "
            f"instance (as scikit-learn's check_random_state takes); got {random_state!r}."
        )
    return int(random_state)


def stream(seed, purpose, member=0):
    """The :class:`numpy.random.SeedSequence` of one member (or of the shared ``member=0``)."""
    return np.random.SeedSequence(seed, spawn_key=(_PURPOSES[purpose], member))


def numpy_rng(seed, purpose, member=0):
    """A NumPy generator on ``stream(seed, purpose, member)``."""
    return np.random.default_rng(stream(seed, purpose, member))


def torch_seed(seed, purpose, member=0):
    """A 63-bit integer seed for torch generators, from the same stream."""
    # A Python int before the shift: NumPy 1.x cannot shift a uint64 by a Python int.
    return int(stream(seed, purpose, member).generate_state(1, dtype=np.uint64)[0]) >> 1


def torch_generator(seed, purpose, member=0):
    """A CPU :class:`torch.Generator` on the member's stream."""
    return torch.Generator().manual_seed(torch_seed(seed, purpose, member))


# torch's global generator is one per process: two threads forking it at once would restore each
# other's states. Forked blocks therefore run one at a time (per process).
_GLOBAL_GENERATOR_LOCK = threading.RLock()


@contextlib.contextmanager
def forked_rng(device, seed, needed=True):
    """Seed torch's global generator(s) for this block only, restoring the caller's state after.

    Module constructors (``nn.Linear``'s init) and dropout draw from the global generator; forking
    it keeps fits reproducible without reseeding or consuming the caller's stream. Only the CPU
    generator and the one of the CUDA device in use are touched. Blocks in different threads of
    one process run one after the other (a lock): the generator is shared by the threads.
    ``needed=False`` (code that draws nothing, such as the built-in networks) leaves the
    generator alone: forked and seeded, it would hand this block's seeded stream to any other
    thread drawing from it meanwhile.
    """
    if not needed:
        yield
        return
    device = torch.device(device)
    cuda = device.type == "cuda"
    with _GLOBAL_GENERATOR_LOCK, torch.random.fork_rng(devices=[device] if cuda else []):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield
