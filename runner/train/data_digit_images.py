"""The bundled digits as images: 1×8×8 tensors (channels, height, width) for convolutional
networks, standardized per pixel like `data=digits`."""

import torch

from runner.train.data import Batch, Digits


class DigitImages(Digits):
    """scikit-learn's bundled 8×8 digits as 1,797 images of shape (1, 8, 8), 10 classes."""

    def make(self) -> Batch:
        X, y = super().make()
        return X.reshape(-1, 1, 8, 8), y  # (N, 64) → (N, C=1, H=8, W=8), row-major as drawn

    def fit(self, X: torch.Tensor, y: torch.Tensor) -> None:
        super().fit(X, y)  # per-pixel mean and std, of shape (1, 8, 8)
