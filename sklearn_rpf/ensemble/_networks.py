"""Member networks, and ensembles of ``K`` of them evaluated together.

* :class:`MLP`, one member network, and :class:`EnsembleMLP`, ``K`` of them stored as stacked
  weights so that the whole ensemble trains with batched matrix products;
* :class:`VmapEnsemble`, ``K`` copies of any user module evaluated together with
  ``torch.func.vmap`` (the generic vectorised path);
* :class:`ModuleListEnsemble`, ``K`` modules evaluated one after the other (modules that cannot be
  vectorised, and frozen priors that need no gradient, so the loop is cheap).

Every ensemble maps ``x`` of shape ``(n, d)`` to ``(K, n, o)`` and answers the same questions:
``n_members``, ``member(k)`` (a stand-alone copy of member ``k``), ``member_state(k)`` /
``load_member_state(k, state)`` (to keep one member's best weights during early stopping) and
``concatenate(parts)`` (one ensemble from groups of members trained apart).
"""

import copy
import math
import threading

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "selu": nn.SELU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}

# One lock for every vmapped ensemble's skeleton (see VmapEnsemble.forward): only modules of
# the user's own run there, and a fit trains one group at a time anyway.
_SKELETON_LOCK = threading.RLock()
# Names torch.nn.init.calculate_gain knows for our activations (ELU and GELU behave like ReLU;
# SELU is self-normalising, so "linear", as torch's documentation advises). The sigmoid's gain of
# 1 leaves its prior's output std near 0.5, not 1.
_GAIN_NAMES = {"relu": "relu", "elu": "relu", "gelu": "relu", "tanh": "tanh",
               "logistic": "sigmoid", "selu": "linear", "identity": "linear"}


# Both initialisations draw member by member, each from its own generator, in the order weight 0,
# bias 0, weight 1, ...: member k's weights do not depend on how many members are built together.
# The draws go straight into the stacked tensors and are scaled once for all members: built one
# small tensor at a time, the networks of a 50-member toy fit cost about a tenth of the fit.


def _init_uniform(weights, biases, generators):
    """Like :class:`torch.nn.Linear`: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    A member's draws are one call of the length of all its parameters: torch's CPU generator fills
    a uniform tensor element by element, so this gives the very numbers of one call per tensor."""
    tensors = [t for pair in zip(weights, biases, strict=True) for t in pair]
    sizes = [math.prod(t.shape[1:]) for t in tensors]
    draws = torch.empty(len(generators), sum(sizes), dtype=weights[0].dtype)
    for k, generator in enumerate(generators):
        torch.rand(sum(sizes), generator=generator, dtype=draws.dtype, out=draws[k])
    start = 0
    for i, (tensor, size) in enumerate(zip(tensors, sizes, strict=True)):
        bound = 1.0 / math.sqrt(weights[i // 2].shape[1])
        tensor.copy_(((draws[:, start : start + size] * 2 - 1) * bound).view(tensor.shape))
        start += size


def _init_variance_preserving(weights, biases, generators, gain):
    """Gaussian weights scaled by the activation's gain (He/Kaiming), biases as in
    :func:`_init_uniform`.

    With standardised inputs every layer, and so the output, has about unit variance, whatever the
    width and depth. The first layer sees the raw inputs; later ones see activations, which the
    gain compensates (ReLU halves the second moment, so its gain is sqrt(2))."""
    for k, generator in enumerate(generators):
        for weight, bias in zip(weights, biases, strict=True):
            torch.randn(weight.shape[1:], generator=generator, dtype=weight.dtype, out=weight[k])
            torch.rand(bias.shape[1:], generator=generator, dtype=bias.dtype, out=bias[k])
    for i, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
        fan_in = weight.shape[1]
        weight.mul_((gain if i else 1.0) / math.sqrt(fan_in))
        bias.copy_((bias * 2 - 1) * (1.0 / math.sqrt(fan_in)))


class MLP(nn.Module):
    """A fully connected network: one ensemble member.

    Parameters
    ----------
    n_features : int
        Number of input features.
    n_outputs : int
        Number of outputs.
    hidden_layer_sizes : tuple of int, default=(50,)
        Width of each hidden layer.
    activation : str, default="relu"
        One of ``ACTIVATIONS``.
    """

    def __init__(self, n_features, n_outputs, hidden_layer_sizes=(50,), activation="relu"):
        super().__init__()
        sizes = [n_features, *hidden_layer_sizes, n_outputs]
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            if i:
                layers.append(ACTIVATIONS[activation]())
            layers.append(nn.Linear(fan_in, fan_out))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class _StackedMembers:
    """Members whose parameters and buffers are stacked along a first axis of length ``K``:
    member ``k``'s state is the ``k``-th slice of each."""

    def member_state(self, k):
        return [t[k].detach().clone() for t in self._stacked_tensors()]

    def load_member_state(self, k, state):
        with torch.no_grad():
            for tensor, value in zip(self._stacked_tensors(), state, strict=True):
                tensor[k].copy_(value)


class EnsembleMLP(_StackedMembers, nn.Module):
    """``n_members`` independent MLPs stored as stacked weights.

    The forward pass is a chain of batched matrix products, one per layer, whatever the number
    of members: this is what makes ensemble training as fast as training a single wide network.
    Weights are initialised like :class:`torch.nn.Linear` (uniform in ``±1/sqrt(fan_in)``), from
    ``generator``.

    Parameters
    ----------
    n_members, n_features, n_outputs : int
        Ensemble size, input width and output width.
    hidden_layer_sizes : tuple of int
        Width of each hidden layer.
    activation : str
        One of ``ACTIVATIONS``.
    generators : sequence of torch.Generator
        One source of random initial weights per member, so that a member's weights depend on
        its own generator only.
    dtype : torch.dtype, default=torch.float32
    init : {"uniform", "variance_preserving"}, default="uniform"
        ``"uniform"``: like :class:`torch.nn.Linear`. ``"variance_preserving"``: Gaussian weights
        scaled by the activation's gain (He initialisation), so that on standardised inputs the
        output has roughly unit variance; used for priors, so that ``prior_scale`` reads as the
        prior's standard deviation in units of the (normalised) target.
    """

    def __init__(
        self,
        n_members,
        n_features,
        n_outputs,
        hidden_layer_sizes=(50,),
        activation="relu",
        *,
        generators,
        dtype=torch.float32,
        init="uniform",
    ):
        super().__init__()
        self.hidden_layer_sizes = tuple(hidden_layer_sizes)
        self.activation = activation
        self.n_features = n_features
        self.n_outputs = n_outputs
        sizes = [n_features, *hidden_layer_sizes, n_outputs]
        if len(generators) != n_members:
            raise ValueError(f"Expected {n_members} generators, got {len(generators)}.")
        weights = [torch.empty(n_members, fan_in, fan_out, dtype=dtype)
                   for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True)]
        biases = [torch.empty(n_members, 1, b, dtype=dtype) for b in sizes[1:]]
        if init == "uniform":
            _init_uniform(weights, biases, generators)
        else:
            _init_variance_preserving(weights, biases, generators,
                                      nn.init.calculate_gain(_GAIN_NAMES.get(activation, "relu")))
        self.weights = nn.ParameterList(nn.Parameter(w) for w in weights)
        self.biases = nn.ParameterList(nn.Parameter(b) for b in biases)
        self.act = ACTIVATIONS[activation]()

    @property
    def n_members(self):
        return self.weights[0].shape[0]

    def forward(self, x):
        # The first layer broadcasts the shared input over members: (n, d) @ (K, d, h) -> (K, n, h).
        weights, biases = list(self.weights), list(self.biases)  # slicing a ParameterList is slow
        h = torch.baddbmm(biases[0], x.expand(len(weights[0]), -1, -1), weights[0])
        for weight, bias in zip(weights[1:], biases[1:], strict=True):
            h = torch.baddbmm(bias, self.act(h), weight)
        return h

    def _stacked_tensors(self):
        return [*self.weights, *self.biases]

    @classmethod
    def concatenate(cls, parts):
        """One ensemble holding the members of ``parts`` (same architecture), in order."""
        first = parts[0]
        with torch.device("meta"):  # no initialisation: the weights are copied in below
            joined = cls(0, first.n_features, first.n_outputs, first.hidden_layer_sizes,
                         first.activation, generators=[])
        joined.weights = nn.ParameterList(
            nn.Parameter(torch.cat([p.weights[i].detach() for p in parts]))
            for i in range(len(first.weights)))
        joined.biases = nn.ParameterList(
            nn.Parameter(torch.cat([p.biases[i].detach() for p in parts]))
            for i in range(len(first.biases)))
        return joined

    def member(self, k):
        """Return member ``k`` as a stand-alone :class:`MLP` holding a copy of its weights."""
        with torch.device("meta"):  # no initialisation, no draw from the global generator
            mlp = MLP(self.n_features, self.n_outputs, self.hidden_layer_sizes, self.activation)
        mlp = mlp.to_empty(device=self.weights[0].device).to(self.weights[0].dtype)
        linears = [m for m in mlp.layers if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for linear, weight, bias in zip(linears, self.weights, self.biases, strict=True):
                linear.weight.copy_(weight[k].T)
                linear.bias.copy_(bias[k, 0])
        return mlp


def _flat(name):
    # nn.ParameterDict keys may not contain dots.
    return name.replace(".", "__")


class VmapEnsemble(_StackedMembers, nn.Module):
    """``K`` instances of one module class evaluated together with ``torch.func.vmap``.

    The members' parameters are stacked along a new first axis (``stack_module_state``) and held
    here as ordinary parameters, so one optimizer step updates every member.

    Parameters
    ----------
    members : list of nn.Module
        Independently initialised instances of the same architecture.
    """

    def __init__(self, members):
        super().__init__()
        params, buffers = stack_module_state(list(members))
        self._set_stacked(params, buffers, members[0])

    def _set_stacked(self, params, buffers, template):
        # A parameter the user froze stays frozen (nn.Parameter alone would train it).
        frozen = {name for name, p in template.named_parameters() if not p.requires_grad}
        self.params = nn.ParameterDict({_flat(k): nn.Parameter(v, requires_grad=k not in frozen)
                                        for k, v in params.items()})
        for name, value in buffers.items():
            self.register_buffer(_flat("buffer." + name), value)
        self._names = list(params)
        self._buffer_names = list(buffers)
        # A skeleton of the architecture on the meta device: functional_call swaps in the
        # stacked tensors, so it owns no memory and is kept out of the parameter registry.
        self.__dict__["_skeleton"] = copy.deepcopy(template).to("meta")

    @property
    def n_members(self):
        return next(iter(self.params.values())).shape[0]

    def _stacked(self):
        params = {name: self.params[_flat(name)] for name in self._names}
        buffers = {name: getattr(self, _flat("buffer." + name)) for name in self._buffer_names}
        return params, buffers

    def forward(self, x):
        skeleton = self._skeleton

        def call(params, buffers, inputs):
            return functional_call(skeleton, (params, buffers), (inputs,))

        params, buffers = self._stacked()
        # functional_call swaps the stacked tensors into the one skeleton and back: two threads
        # predicting at once would swap each other's meta tensors in mid-call.
        with _SKELETON_LOCK:
            skeleton.train(self.training)
            return vmap(call, in_dims=(0, 0, None), randomness="different")(params, buffers, x)

    def _stacked_tensors(self):
        params, buffers = self._stacked()
        return [*params.values(), *buffers.values()]

    @classmethod
    def concatenate(cls, parts):
        """One ensemble holding the members of ``parts`` (same architecture), in order."""
        stacked = [p._stacked() for p in parts]
        params = {name: torch.cat([s[0][name].detach() for s in stacked]) for name in stacked[0][0]}
        buffers = {name: torch.cat([s[1][name] for s in stacked]) for name in stacked[0][1]}
        joined = cls.__new__(cls)
        nn.Module.__init__(joined)
        joined._set_stacked(params, buffers, parts[0]._skeleton)
        return joined

    def member(self, k):
        """Return member ``k`` as a stand-alone module holding a copy of its weights."""
        params, buffers = self._stacked()
        state = {name: t[k].detach().clone() for name, t in {**params, **buffers}.items()}
        with _SKELETON_LOCK:
            module = copy.deepcopy(self._skeleton)
        module = module.to_empty(device=next(iter(params.values())).device)
        module.load_state_dict(state)
        return module.to(dtype=next(iter(params.values())).dtype)

    def __getstate__(self):
        state = self.__dict__.copy()
        # Meta tensors cannot be pickled: keep the architecture as an empty CPU copy instead.
        with _SKELETON_LOCK:
            skeleton = copy.deepcopy(self._skeleton)
        state["_skeleton"] = skeleton.to_empty(device="cpu")
        return state

    def __setstate__(self, state):
        state["_skeleton"] = state["_skeleton"].to("meta")
        self.__dict__.update(state)


class ModuleListEnsemble(nn.Module):
    """``K`` modules evaluated one after the other; output ``(K, n, o)``."""

    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(members)

    @property
    def n_members(self):
        return len(self.members)

    def forward(self, x):
        return torch.stack([m(x) for m in self.members])

    def member(self, k):
        return copy.deepcopy(self.members[k])

    def member_state(self, k):
        return copy.deepcopy(self.members[k].state_dict())

    def load_member_state(self, k, state):
        self.members[k].load_state_dict(state)

    @classmethod
    def concatenate(cls, parts):
        """One ensemble holding the members of ``parts``, in order."""
        return cls([member for part in parts for member in part.members])


