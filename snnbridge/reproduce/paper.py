"""The paper's published numbers (Deng et al. 2020), to print beside ours.  ``None``: not in the text we have."""

from __future__ import annotations

TABLE4 = {  # (dataset, network, model) -> top-1 accuracy %
    ("mnist", "mlp", "1"): 98.60, ("mnist", "mlp", "2"): 98.51, ("mnist", "mlp", "3"): 98.41,
    ("mnist", "cnn", "1"): 99.31, ("mnist", "cnn", "2"): 99.07, ("mnist", "cnn", "3"): 99.22,
    ("cifar10", "cnn", "1"): 78.16, ("cifar10", "cnn", "2"): 76.81, ("cifar10", "cnn", "3"): 63.19,
    ("cifar10", "cnn", "3b"): 74.23,
}
"""Table 4: accuracy on ANN-oriented workloads (``3b``: Model-3 with an encoding layer)."""

TABLE5 = {
    ("nmnist", "mlp", "4"): 97.24, ("nmnist", "mlp", "5"): 97.63, ("nmnist", "mlp", "6"): 98.61,
    ("nmnist", "cnn", "4"): None, ("nmnist", "cnn", "5"): None, ("nmnist", "cnn", "6"): 99.42,
    ("dvs-cifar10", "cnn", "4"): 17.60, ("dvs-cifar10", "cnn", "5"): 51.10, ("dvs-cifar10", "cnn", "6"): 60.30,
}
"""Table 5: accuracy on SNN-oriented workloads (the N-MNIST CNN's Model-4/5 cells are missing from our copy;
the text says Model-4 beat Model-5 there)."""


def paper_accuracy(dataset: str, network: str, model: str) -> float | None:
    """The paper's accuracy (%) for a cell of Table 4 or 5, or ``None``."""
    return {**TABLE4, **TABLE5}.get((dataset, network, model))
