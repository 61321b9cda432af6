"""Key/value caches of transformers models: selecting batch rows cheaply, measuring them.

The scoring engine (:mod:`._digit_scoring`) continues many prompts from one cached pass; the
whitespace step copies each prompt's cache once per whitespace token it follows. For long
prompts those copies are gigabytes, so rows are selected without copying the rest of the batch,
and their size decides how many go into one pass.
"""

import copy
import inspect

import torch


def cache_keyword(model):
    """The forward's name for the key/value cache, in and out: transformers 5 renamed
    ``past_key_values`` to ``cache`` (and warns on reading the old name)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def select_cache_rows(cache, rows):
    """A new key/value cache holding the given batch rows (repeats allowed); the input is kept.

    The copy starts out sharing the input's tensors: ``reorder_cache`` replaces the per-row ones
    (keys, values, convolution states) with the selected rows, and only the tensors it left
    shared are then cloned (a layer's length counter, which some layers advance in place).
    Deep-copying every tensor first would copy every row of the batch, gigabytes for long
    prompts, to keep a few."""
    if isinstance(cache, tuple):  # legacy layout: one (key, value, ...) tuple per layer
        return tuple(tuple(t.index_select(0, rows) for t in layer) for layer in cache)
    originals = _cache_tensors(cache)
    selected = copy.deepcopy(cache, {id(t): t for t in originals})
    selected.reorder_cache(rows)
    shared = {id(t) for t in originals}
    return _unshared(selected, lambda t: t.clone() if id(t) in shared else t, {})


def _cache_tensors(obj, seen=None):
    """Every tensor reachable from a cache object through attributes, lists, tuples and dicts."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        children = obj.values()
    elif isinstance(obj, list | tuple):
        children = obj
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        children = vars(obj).values()
    else:
        return []
    return [t for child in children for t in _cache_tensors(child, seen)]


def _unshared(obj, replace, done):
    """``obj`` with every tensor ``t`` in it replaced by ``replace(t)``: attributes, lists and
    dicts are changed in place, tuples rebuilt; a tensor met twice is replaced once."""
    if isinstance(obj, torch.Tensor):
        if id(obj) not in done:
            done[id(obj)] = replace(obj)
        return done[id(obj)]
    if id(obj) in done:
        return done[id(obj)]
    done[id(obj)] = obj
    if isinstance(obj, list):
        obj[:] = [_unshared(item, replace, done) for item in obj]
    elif isinstance(obj, dict):
        for key, item in obj.items():
            obj[key] = _unshared(item, replace, done)
    elif isinstance(obj, tuple):
        items = [_unshared(item, replace, done) for item in obj]
        done[id(obj)] = type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
        return done[id(obj)]
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        attributes = vars(obj)
        for key, item in attributes.items():
            attributes[key] = _unshared(item, replace, done)
    return obj


def cache_bytes(cache):
    """Bytes held by a key/value cache's tensors."""
    tensors = (_cache_tensors(cache) if not isinstance(cache, tuple)
               else [t for layer in cache for t in layer])
    return sum(t.numel() * t.element_size() for t in tensors)
