"""Weights cross Ray's object store as numpy arrays (out of band, zero-copy reads), not pickled
torch tensors; the round trip must give the policy the very same values."""

import numpy as np
import pytest
import torch

from distributed.ray_actors import weights_from_store, weights_to_store


def test_weights_go_to_the_store_as_arrays_and_come_back_as_equal_tensors():
    net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8, 3))
    weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
    weights["steps"] = torch.tensor(7, dtype=torch.int64)
    stored = weights_to_store(weights)
    assert all(isinstance(v, np.ndarray) for v in stored.values())
    for v in stored.values():  # as Ray hands them out: read-only views of shared memory
        v.setflags(write=False)
    back = weights_from_store(stored)
    assert set(back) == set(weights)
    for k, v in weights.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v)
    other = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.Flatten(),
                                torch.nn.Linear(8, 3))
    other.load_state_dict({k: v for k, v in back.items() if k != "steps"})
    assert all(torch.equal(a, b) for a, b in zip(other.parameters(), net.parameters()))


def test_a_tensor_numpy_cannot_hold_travels_as_a_tensor():
    w = {"a": torch.ones(3, dtype=torch.bfloat16), "b": torch.ones(2, requires_grad=True)}
    stored = weights_to_store(w)
    assert isinstance(stored["a"], torch.Tensor) and stored["a"].dtype == torch.bfloat16
    assert isinstance(stored["b"], np.ndarray)
    back = weights_from_store(stored)
    assert torch.equal(back["a"], w["a"]) and torch.equal(back["b"], w["b"].detach())


@pytest.mark.parametrize("value", [3, "x", None])
def test_entries_that_are_not_tensors_pass_through(value):
    assert weights_from_store(weights_to_store({"k": value})) == {"k": value}


def test_a_numpy_array_among_the_weights_comes_back_as_an_array():
    """Only tensors travel as arrays: a plug-in's own arrays came back as tensors (one of
    objects could not even be turned into one), unlike inline, where the policy gets them."""
    weights = {"table": np.arange(6.0).reshape(2, 3), "names": np.array(["a", None], object)}
    back = weights_from_store(weights_to_store(weights))
    assert isinstance(back["table"], np.ndarray) and np.array_equal(back["table"],
                                                                    weights["table"])
    assert back["names"].tolist() == ["a", None]
