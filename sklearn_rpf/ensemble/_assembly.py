"""Turning the regressor's parameters into member and prior ensembles, and members into skorch nets.

The regressor describes members by a factory (an ``nn.Module`` class, a partial, any callable) or
by the default MLP; this module instantiates them, stacks them into one ensemble module (stacked
weights, ``torch.func.vmap`` or a plain loop), checks what they return before any training, and
hands fitted members back to the user as stand-alone skorch nets.
"""

import functools
import inspect
import warnings

import torch
from skorch import NeuralNetRegressor
from torch import nn

from ._modules import EnsembleMLP, MemberWithPrior, ModuleListEnsemble, VmapEnsemble

PER_MEMBER_ENSEMBLES = (EnsembleMLP, VmapEnsemble, ModuleListEnsemble)


def is_module_factory(obj):
    """A class of nn.Module (or a functools.partial of one): call it to get a fresh module."""
    if isinstance(obj, functools.partial):
        obj = obj.func
    return isinstance(obj, type) and issubclass(obj, nn.Module)


def instantiate(factory, n_features, n_outputs):
    """Call ``factory`` with ``n_features``/``n_outputs`` if its signature takes them."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return factory()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    kwargs = {
        name: value
        for name, value in (("n_features", n_features), ("n_outputs", n_outputs))
        if takes_any or name in parameters
    }
    module = factory(**kwargs)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"The module factory {factory!r} returned {type(module).__name__}; expected a "
            "torch.nn.Module instance."
        )
    return module


def vectorises(ensemble, x):
    """Whether a forward and backward pass through ``ensemble`` works on a couple of rows."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = ensemble(x[:2])
            if out.requires_grad:
                out.sum().backward()
        ensemble.zero_grad(set_to_none=True)
        return True
    except Exception:  # noqa: BLE001 - any failure means "train the members one by one"
        return False


def stack_members(nets, x, vectorize):
    """Turn member modules (or an :class:`EnsembleMLP`) into one ensemble module.

    ``vectorize`` is True (vmap or fail), False (a plain loop over members) or ``"auto"`` (vmap
    when a trial pass on ``x`` succeeds, else the loop).
    """
    if isinstance(nets, EnsembleMLP):
        if vectorize is not False:
            return nets
        nets = [nets.member(k) for k in range(nets.n_members)]
    if vectorize is not False:
        ensemble = VmapEnsemble(nets)
        if vectorises(ensemble, x):
            return ensemble
        if vectorize is True:
            raise ValueError(
                "vectorize=True but the member module cannot be evaluated with torch.func.vmap; "
                "use vectorize=False or 'auto' to train the members independently."
            )
    return ModuleListEnsemble(nets)


def check_member_output(trainable, x, n_outputs, heteroscedastic):
    """Fail early, in plain words, when the member module does not return ``n_outputs`` columns."""
    with torch.no_grad():
        try:
            width = trainable(x[:2]).shape[-1]
        except Exception as exc:
            raise ValueError(
                f"The member module failed on a float tensor of shape {tuple(x[:2].shape)}: {exc}"
            ) from exc
    if width != n_outputs:
        what = "a mean and a variance per target" if heteroscedastic else "one per target"
        raise ValueError(
            f"The member module must return {n_outputs} outputs ({what}); it returned {width}. "
            "A module factory receives n_features and n_outputs when its signature takes them."
        )


def check_prior_output(prior, x, n_targets):
    """Fail early when the prior does not map ``(n, n_features)`` to ``(n, n_targets)``."""
    if prior is None:
        return
    with torch.no_grad():
        try:
            out = prior(x[:2])
        except Exception as exc:
            raise ValueError(
                f"The prior failed on a float tensor of shape {tuple(x[:2].shape)}: {exc}"
            ) from exc
    if not isinstance(out, torch.Tensor) or out.shape[-2:] != (len(x[:2]), n_targets):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"The prior must map a tensor of shape (n_samples, n_features) to (n_samples, "
            f"{n_targets}) (one column per target); for 2 rows it returned {shape}."
        )


def member_prior(prior, k):
    """Member ``k``'s own prior, or the prior shared by every member (None, a fixed function)."""
    return prior.member(k) if isinstance(prior, PER_MEMBER_ENSEMBLES) else prior


def prior_outputs_in_chunks(ensemble, x, rows):
    """Frozen prior outputs of a :class:`RandomizedPriorEnsemble` for ``x``, ``rows`` at a time.

    Chunking bounds memory: the priors' hidden activations for every row at once would dwarf the
    outputs themselves. Shape ``(K, n, t)``, or ``(n, t)`` for a shared prior.
    """
    with torch.no_grad():
        return torch.cat([ensemble.prior_outputs(chunk) for chunk in torch.split(x, rows)], dim=-2)


def member_skorch_nets(ensemble, n_members, y_offset, y_scale, net_kwargs):
    """One initialised ``NeuralNetRegressor`` per member: its net plus its scaled frozen prior.

    ``ensemble`` is the fitted :class:`RandomizedPriorEnsemble`; each member module copies its
    weights and predicts in the target's original units (``y_offset``/``y_scale`` tensors).
    """
    nets = []
    for k in range(n_members):
        module = MemberWithPrior(
            ensemble.trainable.member(k), member_prior(ensemble.prior, k), ensemble.prior_scale,
            ensemble.n_targets, y_offset, y_scale,
        )
        net = NeuralNetRegressor(module=module, criterion=nn.MSELoss, train_split=None, **net_kwargs)
        net.initialize()
        nets.append(net)
    return nets
