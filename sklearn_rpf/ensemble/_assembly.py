"""From the regressor's parameters to ensemble modules, member by member.

The regressor describes members by a factory (an ``nn.Module`` class, a partial, any callable) or by
the default MLP, and the prior by None (the member architecture, frozen), a factory, or a fixed
function. :class:`EnsembleSpec` holds that description, validated once, and builds any subset of
members: member ``k`` gets its initial weights and its prior from its own random streams, so a
group of members built on a worker is the same as those members built with all the others.
"""

import contextlib
import copy
import functools
import inspect
import itertools
import os
import warnings
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from ._networks import EnsembleMLP, ModuleListEnsemble, VmapEnsemble
from ._priors import FixedFunctionPrior, RandomizedPriorEnsemble
from ._seeding import forked_rng, torch_generator, torch_seed


def _device_memory(device):
    """Bytes of memory of ``device`` (a torch.device): physical memory for the CPU, the card's
    for CUDA; None where it cannot be read."""
    try:
        if device.type == "cuda":
            return torch.cuda.get_device_properties(device).total_memory
        if device.type == "cpu":
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError, RuntimeError):  # no sysconf (Windows), ...
        pass
    return None


def _bytes(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024


def is_module_factory(obj):
    """A class of nn.Module (or a functools.partial of one): call it to get a fresh module."""
    if isinstance(obj, functools.partial):
        obj = obj.func
    return isinstance(obj, type) and issubclass(obj, nn.Module)


def _accepted_size_arguments(factory):
    """Which of ``n_features``/``n_outputs`` the factory's signature takes."""
    target = factory.func if isinstance(factory, functools.partial) else factory
    if isinstance(target, type) and target.__init__ is nn.Module.__init__:
        return set()  # nn.Module.__init__ takes **kwargs but rejects every one of them
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return set()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return {name for name in ("n_features", "n_outputs") if takes_any or name in parameters}


def instantiate(factory, n_features, n_outputs, role="module"):
    """Call ``factory`` with ``n_features``/``n_outputs`` if its signature takes them; a clear
    error, naming the parameter (``role``), when it needs other arguments."""
    sizes = {"n_features": n_features, "n_outputs": n_outputs}
    given = {name: sizes[name] for name in _accepted_size_arguments(factory)}
    try:
        inspect.signature(factory).bind(**given)
    except TypeError as exc:  # a required argument that only the user knows
        raise TypeError(
            f"{role}={factory!r} is built as {getattr(factory, '__name__', 'factory')}("
            f"{', '.join(f'{k}={v}' for k, v in given.items())}), one call per member, but {exc}. "
            "Give the other arguments with functools.partial, e.g. "
            f"{role}=functools.partial(YourModule, width=...)."
        ) from None
    except ValueError:  # no signature to read: let the call say
        pass
    module = factory(**given)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"The module factory {factory!r} returned {type(module).__name__}; expected a "
            "torch.nn.Module instance."
        )
    return module


@contextlib.contextmanager
def _buffers_kept(module):
    """The module's buffers as they were after the block: a trial pass in train mode would
    write two rows' statistics into BatchNorm's running mean (the members' and the priors')."""
    # Lazy buffers (LazyBatchNorm) hold no values until the first pass, which initialises them.
    saved = [(owner, name, buffer, buffer.clone()) for owner in module.modules()
             for name, buffer in owner._buffers.items()
             if buffer is not None and not is_lazy(buffer)]
    try:
        yield
    finally:
        with torch.no_grad():
            for owner, name, buffer, value in saved:
                buffer.copy_(value)
                # A pass that rebinds its buffer (self.count = self.count + 1) gets it back too.
                owner._buffers[name] = buffer


def vectorises(ensemble, x):
    """Whether a forward and backward pass through ``ensemble`` works on a couple of rows."""
    try:
        with _buffers_kept(ensemble), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = ensemble(x[:2])
            if out.requires_grad:
                out.sum().backward()
        ensemble.zero_grad(set_to_none=True)
        return True
    except Exception:  # noqa: BLE001 - any failure means "train the members one by one"
        return False


def _check_member_output(trainable, x, n_outputs, heteroscedastic, dtype):
    """Fail early, in plain words, when the member module does not return ``n_outputs`` columns
    of the regressor's precision."""
    with _trial_rows(x, "member module") as rows, torch.no_grad(), _buffers_kept(trainable):
        try:
            out = trainable(rows)  # (members, rows, outputs)
        except Exception as exc:
            raise ValueError(
                f"The member module failed on a float tensor of shape {tuple(x[:2].shape)}: {exc}"
            ) from exc
    if out.dim() != 3 or out.shape[1:] != (len(x[:2]), n_outputs):
        what = "a mean and a variance per target" if heteroscedastic else "one per target"
        raise ValueError(
            f"The member module must map (n_samples, n_features) to (n_samples, {n_outputs}) "
            f"({n_outputs} outputs, {what}); for 2 rows it returned shape "
            f"{tuple(out.shape[1:])}. A module factory receives n_features and n_outputs when "
            "its signature takes them."
        )
    if out.dtype != dtype:
        raise ValueError(
            f"The member module must return {dtype} (the regressor's dtype); it returned "
            f"{out.dtype}. Keep its computation in the input's precision, or set the regressor's "
            "dtype to match."
        )
    if not any(p.requires_grad for p in trainable.parameters()):
        raise ValueError("The member module has no trainable parameters: there is nothing to "
                         "fit. Give it at least one nn.Parameter (e.g. an nn.Linear layer).")


@contextlib.contextmanager
def _trial_rows(x, what):
    """A copy of two rows of ``x`` for a trial pass, and after the block a refusal of a module
    that wrote into it: the member and the prior read the same input tensor (the member first),
    and training reads the same rows at every epoch, so an in-place edit would silently change
    what the other one sees and the data trained on next."""
    rows = x[:2].clone()
    # torch counts every in-place write: this catches one that leaves these two rows' values as
    # they were (x.clamp_(-1, 1) on rows inside the range) but not the other rows'.
    version = rows._version
    yield rows
    if rows._version != version or not torch.equal(rows, x[:2]):
        raise ValueError(
            f"The {what} modified its input tensor in place (e.g. x.clamp_(...), x.mul_(...), "
            "x[:, 0] = ...); the same input rows feed the member and the prior and are read "
            "again at every epoch. Compute on a copy or with out-of-place operations "
            "(torch.clamp(x, ...), x * 2)."
        )


def _check_prior_output(prior, x, n_targets):
    """Fail early when the prior does not map ``(n, n_features)`` to ``(n, n_targets)``, or is
    not a fixed function (two calls differ, or it draws from torch's generator)."""
    with _trial_rows(x, "prior") as rows, torch.no_grad(), _buffers_kept(prior):
        try:
            prior(rows)  # a first call may initialise lazy layers (LazyLinear): not the test
            state = torch.get_rng_state()
            out = prior(rows).clone()  # a clone: a prior that writes into its output
            drew = not torch.equal(state, torch.get_rng_state())
            again = prior(rows)
        except Exception as exc:
            raise ValueError(
                f"The prior failed on a float tensor of shape {tuple(x[:2].shape)}: {exc}"
            ) from exc
    if drew or (isinstance(out, torch.Tensor) and isinstance(again, torch.Tensor) and
                out.shape == again.shape and not  # NaN equal to NaN: its own check follows
                bool(((out == again) | (out.isnan() & again.isnan())).all())):
        raise ValueError(
            "The prior must be a fixed function of its input, but "
            + ("it draws random numbers from (or reseeds) torch's generator" if drew else
               "two calls on the same rows returned different values")
            + " (dropout in train mode inside a function, torch.randn, ...): the members, and "
            "random_state, could not reproduce it. Pass the module itself as prior= (it is "
            "evaluated in eval mode), or a function without randomness."
        )
    if isinstance(out, torch.Tensor) and out.is_complex():
        raise ValueError(f"The prior must return real numbers; it returned {out.dtype}.")
    shared = isinstance(prior, FixedFunctionPrior)  # (n, t); one prior per member: (K, n, t)
    if not isinstance(out, torch.Tensor) or out.dim() != (2 if shared else 3) or \
            out.shape[-2:] != (len(x[:2]), n_targets):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"The prior must map a tensor of shape (n_samples, n_features) to (n_samples, "
            f"{n_targets}) (one column per target); for 2 rows it returned {shape}."
        )


@dataclass(frozen=True)
class EnsembleSpec:
    """What to build: the member architecture, the prior, and their sizes.

    ``prior_scale == 0`` means no prior at all: it is decided here, once.
    """

    module: object
    hidden_layer_sizes: tuple
    activation: str
    prior: object
    prior_scale: float
    n_features: int
    n_targets: int
    heteroscedastic: bool
    dtype: torch.dtype
    vectorize: object = "auto"

    @property
    def n_outputs(self):
        return 2 * self.n_targets if self.heteroscedastic else self.n_targets

    @property
    def has_prior(self):
        return self.prior_scale != 0

    def builtin_parameters(self):
        """Values per member in the built-in MLPs, ``(trainable, prior)``: the trainable network
        when ``module`` is None, the prior when ``prior`` is None (0 for the user's own modules,
        unknown until built, and without a prior)."""
        def mlp(n_outputs):
            sizes = (self.n_features, *self.hidden_layer_sizes, n_outputs)
            return sum((a + 1) * b for a, b in itertools.pairwise(sizes))

        return (mlp(self.n_outputs) if self.module is None else 0,
                mlp(self.n_targets) if self.has_prior and self.prior is None else 0)

    def check_memory(self, n_members, device):
        """A clear error, before anything is allocated, when the built-in networks' weights and
        gradients alone exceed the device's memory (torch would fail inside its allocator, or
        the system would kill the process later)."""
        trainable, prior = self.builtin_parameters()
        needed = (2 * trainable + prior) * n_members * self.dtype.itemsize
        available = _device_memory(device)
        if available is None or needed <= available:
            return
        raise ValueError(
            f"hidden_layer_sizes={self.hidden_layer_sizes} with {self.n_features} feature(s) "
            f"gives networks of {trainable + prior:,} values per member: the weights and "
            f"gradients of {n_members} member(s) alone need {_bytes(needed)} in {self.dtype}, "
            f"more than the {_bytes(available)} of memory of device {str(device)!r}. Use "
            "smaller layers or fewer members."
        )

    def _nets(self, members, seed, purpose, n_outputs, init):
        """Stand-alone member modules (or an EnsembleMLP) for ``members``, each from its stream."""
        factory = self.module if purpose == "init" else self.prior
        if factory is None:
            return EnsembleMLP(
                len(members), self.n_features, n_outputs, self.hidden_layer_sizes,
                self.activation, generators=[torch_generator(seed, purpose, k) for k in members],
                dtype=self.dtype, init=init,
            )
        nets, held = [], []
        role = "module" if purpose == "init" else "prior"
        for k in members:
            # Constructors draw from torch's global generator (nn.Linear's init): fork it, seeded
            # from member k's own stream, so the caller's generator is neither read nor changed.
            with forked_rng("cpu", torch_seed(seed, purpose, k)):
                net = instantiate(factory, self.n_features, n_outputs, role)
            tensors = {id(t) for t in itertools.chain(net.parameters(), net.buffers())}
            if any(tensors & seen for seen in held):  # members would share (and train) them
                raise TypeError(
                    f"{role}={factory!r} returned modules that share weights between members "
                    "(the same module object, or a layer built once outside the factory); it "
                    "must build every layer afresh at each call (each member has its own "
                    "weights, and the caller's layer would be trained in place)."
                )
            held.append(tensors)
            nets.append(net.to(self.dtype))
        return nets

    def _stack(self, nets, x, vectorize):
        """One ensemble module from member nets: stacked weights, vmap, or a plain loop."""
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
                    "vectorize=True but the member module cannot be evaluated with "
                    "torch.func.vmap; use vectorize=False or 'auto' to train the members "
                    "independently."
                )
        return ModuleListEnsemble(nets)

    def build_prior(self, members, seed, x):
        """The frozen prior of ``members``, checked on ``x``; None without a prior."""
        if not self.has_prior:
            return None
        if self.prior is None or is_module_factory(self.prior):
            prior = self._stack(
                self._nets(members, seed, "prior", self.n_targets, "variance_preserving"),
                x.clone(), "auto")
        else:
            function = copy.deepcopy(self.prior)  # never touch the caller's module
            if isinstance(function, nn.Module):
                function = function.to(self.dtype)
            prior = FixedFunctionPrior(function)
        prior.eval()  # frozen priors are always evaluated in eval mode
        _check_prior_output(prior, x, self.n_targets)
        return prior

    def build(self, members, seed, x):
        """Freshly initialised members ``members`` with their priors, checked on ``x``.

        Parameters
        ----------
        members : sequence of int
            Member indices in the whole ensemble (their random streams).
        seed : int
        x : tensor of shape (n, n_features)
            A few input rows for the checks.

        Returns
        -------
        ensemble : RandomizedPriorEnsemble
        """
        if isinstance(self.module, nn.Module):
            raise TypeError(
                "module must be an nn.Module class or a factory returning a fresh module, so "
                f"that each member gets its own initial weights; got the instance {self.module!r}."
            )
        # The trial passes get copies of two rows: a module that writes into its input must not
        # reach the training data, and the checks compare against rows nothing else received.
        x = x[:2].clone()
        # The trial passes below may draw from torch's global generator (dropout in the user's
        # modules): fork it. The built-in networks draw nothing: the generator is left alone.
        users_code = self.module is not None or (self.has_prior and self.prior is not None)
        with forked_rng("cpu", torch_seed(seed, "checks"), needed=users_code):
            trainable = self._stack(
                self._nets(members, seed, "init", self.n_outputs, "uniform"), x.clone(),
                self.vectorize)
            _check_member_output(trainable, x, self.n_outputs, self.heteroscedastic, self.dtype)
            prior = self.build_prior(members, seed, x)
        return RandomizedPriorEnsemble(trainable, prior, self.prior_scale, self.n_targets)

    def vectorises(self, seed, x):
        """Whether members can be trained together (vmap or stacked weights); checked on two
        members built from ``seed``."""
        if self.module is None and self.vectorize is not False:
            return True
        trial = self.build([0, 1], seed, x)
        return not isinstance(trial.trainable, ModuleListEnsemble)
