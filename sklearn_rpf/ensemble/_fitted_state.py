"""How the regressor's fitted state changes and is read: all at once, one training at a time.

* A fit or ``partial_fit`` that raises (or is interrupted) leaves the estimator exactly as it was
  (:func:`unchanged_on_failure`); a successful one replaces the fitted attributes in one update.
* Calls that train one estimator from several threads run one after the other
  (:func:`one_training_at_a_time`): two chunks streamed at once lost one of them, or trained each
  with the other's loss scale.
* Predictions read the attributes they combine from one copy of the state
  (:func:`read_together`), so a refit in another thread never mixes one fit's members with the
  next fit's noise or calibration.
"""

import contextlib
import threading
import weakref

# Kept outside the estimators: a lock can be neither pickled nor cloned.
_TRAINING_LOCKS = weakref.WeakKeyDictionary()
_TRAINING_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def one_training_at_a_time(estimator):
    """Hold ``estimator``'s own training lock (re-entrant: ``fit`` may call what also takes it)."""
    with _TRAINING_LOCKS_GUARD:
        lock = _TRAINING_LOCKS.setdefault(estimator, threading.RLock())
    with lock:
        yield


@contextlib.contextmanager
def unchanged_on_failure(estimator):
    """A fit that raises (or is interrupted) leaves the estimator exactly as it was before."""
    saved = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        raise


def read_together(estimator, *names):
    """Fitted attributes read from one copy of the state, taken at once: a refit in another
    thread replaces them all in one ``__dict__.update``."""
    state = dict(estimator.__dict__)
    return tuple(state[name] for name in names)
