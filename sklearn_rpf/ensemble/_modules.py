"""Torch modules for randomized prior ensembles.

Member ``k`` of a randomized prior ensemble predicts ``f_k(x) + prior_scale * p_k(x)``
(Osband, Aslanides & Cassirer, NeurIPS 2018): ``f_k`` is trained, ``p_k`` is a frozen prior.
This module holds the building blocks:

* :class:`MLP`, one member network, and :class:`EnsembleMLP`, ``K`` of them stored as stacked
  weights so that the whole ensemble trains with batched matrix products;
* :class:`VmapEnsemble`, ``K`` copies of any user module evaluated together with
  ``torch.func.vmap`` (the generic vectorised path);
* :class:`ModuleListEnsemble`, ``K`` copies evaluated one after the other (used for frozen priors
  that cannot be vectorised: they need no gradient, so the loop is cheap);
* :class:`FixedFunctionPrior`, a hand-picked prior shared by all members, such as ``sin(3x)``;
* :class:`RandomizedPriorEnsemble` and :class:`MemberWithPrior`, which add the scaled frozen prior
  to the trainable output, for the whole ensemble and for one member.

Ensemble modules map ``x`` of shape ``(n, d)`` to ``(K, n, o)``; the combined modules return
``(n, K, o)`` so that skorch can concatenate predictions batch by batch along the first axis.
"""

import copy
import math

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

# Names torch.nn.init.calculate_gain knows for our activations (ELU and GELU behave like ReLU;
# SELU is self-normalising, so "linear", as torch's documentation advises). The sigmoid's gain of
# 1 leaves its prior's output std near 0.5, not 1.
_GAIN_NAMES = {"relu": "relu", "elu": "relu", "gelu": "relu", "tanh": "tanh",
               "logistic": "sigmoid", "selu": "linear", "identity": "linear"}

# Smallest variance (in normalised target units) a heteroscedastic member may predict: keeps the
# Gaussian negative log-likelihood finite when a member fits a training point exactly.
MIN_VARIANCE = 1e-6


def _uniform_(tensor, bound, generator):
    """Fill ``tensor`` with U(-bound, bound) drawn from ``generator`` (never the global RNG)."""
    with torch.no_grad():
        tensor.copy_((torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype) * 2 - 1) * bound)
    return tensor


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


class EnsembleMLP(nn.Module):
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
    generator : torch.Generator, optional
        Source of the random initial weights.
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
        generator=None,
        dtype=torch.float32,
        init="uniform",
    ):
        super().__init__()
        self.hidden_layer_sizes = tuple(hidden_layer_sizes)
        self.activation = activation
        self.n_features = n_features
        self.n_outputs = n_outputs
        sizes = [n_features, *hidden_layer_sizes, n_outputs]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        gain = nn.init.calculate_gain(_GAIN_NAMES.get(activation, "relu"))
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            bound = 1.0 / math.sqrt(fan_in)
            weight = torch.empty(n_members, fan_in, fan_out, dtype=dtype)
            bias = torch.empty(n_members, 1, fan_out, dtype=dtype)
            if init == "uniform":
                _uniform_(weight, bound, generator)
            else:
                # Variance preserving (He/Kaiming): with standardised inputs every layer, and so
                # the output, has about unit variance, whatever the width and depth.
                # The first layer sees the raw inputs; later ones see activations, which the
                # gain compensates (ReLU halves the second moment, so its gain is sqrt(2)).
                std = (gain if i else 1.0) / math.sqrt(fan_in)
                with torch.no_grad():
                    weight.copy_(torch.randn(weight.shape, generator=generator, dtype=dtype) * std)
            _uniform_(bias, bound, generator)
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(bias))
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


class VmapEnsemble(nn.Module):
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
        self.params = nn.ParameterDict({_flat(k): nn.Parameter(v) for k, v in params.items()})
        for name, value in buffers.items():
            self.register_buffer(_flat("buffer." + name), value)
        self._names = list(params)
        self._buffer_names = list(buffers)
        # A skeleton of the architecture on the meta device: functional_call swaps in the
        # stacked tensors, so it owns no memory and is kept out of the parameter registry.
        self.__dict__["_skeleton"] = copy.deepcopy(members[0]).to("meta")

    @property
    def n_members(self):
        return next(iter(self.params.values())).shape[0]

    def _stacked(self):
        params = {name: self.params[_flat(name)] for name in self._names}
        buffers = {name: getattr(self, _flat("buffer." + name)) for name in self._buffer_names}
        return params, buffers

    def forward(self, x):
        skeleton = self._skeleton
        skeleton.train(self.training)

        def call(params, buffers, inputs):
            return functional_call(skeleton, (params, buffers), (inputs,))

        params, buffers = self._stacked()
        return vmap(call, in_dims=(0, 0, None), randomness="different")(params, buffers, x)

    def member(self, k):
        """Return member ``k`` as a stand-alone module holding a copy of its weights."""
        params, buffers = self._stacked()
        state = {name: t[k].detach().clone() for name, t in {**params, **buffers}.items()}
        module = copy.deepcopy(self._skeleton).to_empty(device=next(iter(params.values())).device)
        module.load_state_dict(state)
        return module.to(dtype=next(iter(params.values())).dtype)

    def __getstate__(self):
        state = self.__dict__.copy()
        # Meta tensors cannot be pickled: keep the architecture as an empty CPU copy instead.
        state["_skeleton"] = copy.deepcopy(self._skeleton).to_empty(device="cpu")
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


class FixedFunctionPrior(nn.Module):
    """A hand-picked prior shared by all members, for instance ``lambda x: torch.sin(3 * x)``.

    Parameters
    ----------
    function : callable or nn.Module
        Maps a float tensor of shape ``(n, d)`` to ``(n, n_targets)`` (or ``(n,)`` for one target).
    """

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        out = self.function(x)
        return out.unsqueeze(-1) if out.dim() == 1 else out


def _add_prior(out, prior, prior_scale):
    """Add ``prior_scale * prior`` to the mean outputs (the first ``prior.shape[-1]`` columns)."""
    n_targets = prior.shape[-1]
    if out.shape[-1] == n_targets:
        return out + prior_scale * prior
    return torch.cat([out[..., :n_targets] + prior_scale * prior, out[..., n_targets:]], dim=-1)


def _variance_head(out, n_targets):
    """Heteroscedastic members: the last ``n_targets`` outputs become positive variances."""
    if out.shape[-1] == n_targets:
        return out
    mean, raw = out[..., :n_targets], out[..., n_targets:]
    return torch.cat([mean, nn.functional.softplus(raw) + MIN_VARIANCE], dim=-1)


class _FrozenPriorMixin:
    """Keeps the prior frozen: no gradient, no optimizer slot, always in eval mode."""

    def _freeze(self):
        if self.prior is not None:
            self.prior.requires_grad_(False)
            self.prior.eval()

    def train(self, mode=True):
        super().train(mode)
        if self.prior is not None:
            self.prior.eval()
        return self

    def _prior_output(self, x):
        with torch.no_grad():
            return self.prior(x)


class RandomizedPriorEnsemble(_FrozenPriorMixin, nn.Module):
    """The whole ensemble: trainable members plus ``prior_scale`` times frozen priors.

    Parameters
    ----------
    trainable : nn.Module
        Maps ``(n, d)`` to ``(K, n, o)``; ``o`` is ``n_targets`` or, for heteroscedastic members,
        ``2 * n_targets`` (means, then variance pre-activations).
    prior : nn.Module or None
        Maps ``(n, d)`` to ``(K, n, n_targets)`` (one prior per member) or ``(n, n_targets)``
        (one prior shared by all members). Frozen here.
    prior_scale : float
        Beta in ``f_k(x) + beta * p_k(x)``.
    n_targets : int
    """

    def __init__(self, trainable, prior, prior_scale, n_targets):
        super().__init__()
        self.trainable = trainable
        self.prior = prior
        self.prior_scale = float(prior_scale)
        self.n_targets = n_targets
        self._freeze()

    def prior_outputs(self, x):
        """Frozen prior outputs, shape ``(K, n, n_targets)`` or ``(n, n_targets)``."""
        return self._prior_output(x)

    def forward(self, x, prior=None, weight=None, oob_weight=None):
        """Return ``(n, K, o)``.

        ``prior`` may carry precomputed prior outputs for these rows (they never change during
        training); ``weight`` and ``oob_weight`` are the bootstrap loss weights, read by the loss
        and ignored here.
        """
        out = self.trainable(x)
        if self.prior is not None and self.prior_scale != 0.0:
            if prior is None:
                prior = self._prior_output(x)
            elif prior.dim() == 3:
                prior = prior.transpose(0, 1)  # cached as (n, K, t) so that skorch can batch rows
            out = _add_prior(out, prior, self.prior_scale)
        return _variance_head(out, self.n_targets).transpose(0, 1)


class MemberWithPrior(_FrozenPriorMixin, nn.Module):
    """One member, ``f_k(x) + prior_scale * p_k(x)``, in the target's original units.

    The output has ``n_targets`` columns (the mean), followed for heteroscedastic members by
    ``n_targets`` columns of predicted noise variance.

    Parameters
    ----------
    net : nn.Module
        The trained network ``f_k``.
    prior : nn.Module or None
        The frozen prior ``p_k``.
    prior_scale : float
    n_targets : int
    y_offset, y_scale : torch.Tensor of shape (n_targets,)
        Undo the target normalisation applied during training.
    """

    def __init__(self, net, prior, prior_scale, n_targets, y_offset, y_scale):
        super().__init__()
        self.net = net
        self.prior = prior
        self.prior_scale = float(prior_scale)
        self.n_targets = n_targets
        self.register_buffer("y_offset", torch.as_tensor(y_offset))
        self.register_buffer("y_scale", torch.as_tensor(y_scale))
        self._freeze()

    def forward(self, x):
        x = x.to(self.y_scale.dtype)  # skorch passes float64 arrays through unchanged
        out = self.net(x)
        if self.prior is not None and self.prior_scale != 0.0:
            out = _add_prior(out, self._prior_output(x), self.prior_scale)
        out = _variance_head(out, self.n_targets)
        mean = out[..., : self.n_targets] * self.y_scale + self.y_offset
        if out.shape[-1] == self.n_targets:
            return mean
        return torch.cat([mean, out[..., self.n_targets :] * self.y_scale**2], dim=-1)
