"""make_two_clusters: shapes, the documented formula, and seeding without global state."""

import numpy as np
import pytest

from sklearn_rpf.datasets import make_two_clusters


def test_shapes_clusters_and_formula():
    X, y = make_two_clusters(41, noise=0.0, random_state=0)
    assert X.shape == (41, 1) and y.shape == (41,)
    assert (X[:20, 0] < 0).all() and (X[20:, 0] > 0).all()  # the first n // 2 on the left
    np.testing.assert_allclose(y, np.sin(2 * X[:, 0]) + 0.5 * X[:, 0])


def test_seeds_reproduce_and_none_never_touches_the_global_generator():
    np.testing.assert_array_equal(make_two_clusters(random_state=3)[0],
                                  make_two_clusters(random_state=np.random.RandomState(3))[0])
    state = np.random.get_state()  # noqa: NPY002
    a, b = make_two_clusters()[0], make_two_clusters()[0]
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    assert not np.array_equal(a, b)  # fresh entropy each call


@pytest.mark.parametrize("random_state", [True, -1, 1.5])
def test_bad_random_state(random_state):
    with pytest.raises(ValueError, match="random_state"):
        make_two_clusters(random_state=random_state)
