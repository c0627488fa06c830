"""The embedded default dataset: scikit-learn's bundled 8x8 handwritten digits (no download)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def load_digits(size: int = 8, test_fraction: float = 0.2, seed: int = 0, pad: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 digits as ``(x_train, y_train, x_test, y_test)``.

    Images are ``[N, 1, size + 2·pad, size + 2·pad]`` float32 in ``[0, 1]`` (bilinear upscaling when
    ``size > 8``, then ``pad`` zero pixels on every side); labels ``[N]`` int64.  The split is
    stratified-free, seeded, and the same for the same ``seed``.  ``size=20, pad=4`` frames the digits
    like MNIST (a 20x20 box centred in 28x28), see :func:`load_digits_mnist_like`.
    """
    from sklearn.datasets import load_digits as _sk

    d = _sk()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    if pad:
        x = F.pad(x, (pad, pad, pad, pad))
    y = torch.from_numpy(d.target.astype(np.int64))
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    n_test = int(round(len(y) * test_fraction))
    te, tr = perm[:n_test], perm[n_test:]
    return x[tr], y[tr], x[te], y[te]


def load_digits_mnist_like(test_fraction: float = 0.2, seed: int = 0
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The digits framed like MNIST: upscaled to 20x20 and centred in 28x28 (``[N, 1, 28, 28]``)."""
    return load_digits(size=20, test_fraction=test_fraction, seed=seed, pad=4)
