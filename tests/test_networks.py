"""EnsembleMLP's initial weights: each member's from its own generator, as documented."""

import math

import pytest
import torch

from sklearn_rpf.ensemble._networks import EnsembleMLP


def generators(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def one_call_per_tensor(n_features, n_outputs, hidden, seed, init, dtype):
    """Member weights drawn the plain way: weight 0, bias 0, weight 1, ..., a call for each."""
    generator = torch.Generator().manual_seed(seed)
    sizes = [n_features, *hidden, n_outputs]
    gain = math.sqrt(2.0)  # relu
    expected = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        bound = 1.0 / math.sqrt(fan_in)
        if init == "uniform":
            weight = (torch.rand(fan_in, fan_out, generator=generator, dtype=dtype) * 2 - 1) * bound
        else:
            std = (gain if i else 1.0) / math.sqrt(fan_in)
            weight = torch.randn(fan_in, fan_out, generator=generator, dtype=dtype) * std
        bias = (torch.rand(1, fan_out, generator=generator, dtype=dtype) * 2 - 1) * bound
        expected.append((weight, bias))
    return expected


@pytest.mark.parametrize("init", ["uniform", "variance_preserving"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_features,n_outputs,hidden", [(1, 1, (50, 50)), (13, 3, (300, 7)),
                                                          (4, 2, ())])
def test_each_member_is_drawn_from_its_own_generator(init, dtype, n_features, n_outputs, hidden):
    seeds = [11, 5, 2024]
    ensemble = EnsembleMLP(len(seeds), n_features, n_outputs, hidden, generators=generators(seeds),
                           init=init, dtype=dtype)
    for k, seed in enumerate(seeds):
        expected = one_call_per_tensor(n_features, n_outputs, hidden, seed, init, dtype)
        for (weight, bias), w, b in zip(expected, ensemble.weights, ensemble.biases, strict=True):
            assert w.dtype == dtype
            assert torch.equal(w[k], weight)  # bit for bit: the same draws, the same arithmetic
            assert torch.equal(b[k], bias)


def test_a_member_does_not_depend_on_its_companions():
    alone = EnsembleMLP(1, 3, 1, (8,), generators=generators([7]))
    together = EnsembleMLP(3, 3, 1, (8,), generators=generators([1, 7, 9]))
    for a, t in zip([*alone.weights, *alone.biases], [*together.weights, *together.biases],
                    strict=True):
        assert torch.equal(a[0], t[1])


def test_an_empty_ensemble_builds_on_the_meta_device():
    with torch.device("meta"):
        empty = EnsembleMLP(0, 3, 1, (8,), generators=[])
    assert empty.n_members == 0
