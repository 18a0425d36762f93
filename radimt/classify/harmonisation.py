"""ComBat harmonisation (Johnson et al. 2007) as a scikit-learn transformer, fitted on training
data only so it can live inside a cross-validated pipeline.

The batch (site or scanner) travels as the last column of X; the transformer removes it. Per
feature, values are standardised with the pooled mean and variance, each batch's location and
scale are estimated and shrunk towards the average over features with empirical Bayes
(parametric priors), and removed. Batches unseen at fit time are left as they are (with a
warning), NaN stays NaN.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

log = logging.getLogger(__name__)


class ComBat(TransformerMixin, BaseEstimator):
    """Empirical Bayes location/scale harmonisation; the last column of X is the batch."""

    def __init__(self, iterations: int = 100, tolerance: float = 1e-6):
        self.iterations = iterations
        self.tolerance = tolerance

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> ComBat:  # noqa: N803 - scikit-learn's naming
        values, batch = self._split(X)
        self.batches_ = np.unique(batch)
        self.mean_ = np.nanmean(values, axis=0)
        self.sd_ = np.nanstd(values, axis=0)
        self.sd_[~np.isfinite(self.sd_) | (self.sd_ == 0)] = 1.0
        z = (values - self.mean_) / self.sd_
        gamma_hat = np.array([np.nanmean(z[batch == b], axis=0) for b in self.batches_])
        delta_hat = np.array([np.nanvar(z[batch == b], axis=0, ddof=1) for b in self.batches_])
        delta_hat = np.where(np.isfinite(delta_hat) & (delta_hat > 0), delta_hat, 1.0)
        gamma_hat = np.nan_to_num(gamma_hat)
        self.gamma_, self.delta_ = [], []
        for i, b in enumerate(self.batches_):
            n = np.sum(batch == b)
            g_bar, t2 = gamma_hat[i].mean(), gamma_hat[i].var(ddof=1) if gamma_hat.shape[1] > 1 else 1.0
            m, s2 = delta_hat[i].mean(), delta_hat[i].var(ddof=1) if delta_hat.shape[1] > 1 else 1.0
            s2 = s2 if s2 > 0 else 1e-6
            a, b_prior = (2 * s2 + m**2) / s2, (m * s2 + m**3) / s2
            gamma, delta = gamma_hat[i].copy(), delta_hat[i].copy()
            zb = z[batch == b]
            for _ in range(self.iterations):
                gamma_new = (t2 * n * gamma_hat[i] + delta * g_bar) / (t2 * n + delta)
                ss = np.nansum((zb - gamma_new) ** 2, axis=0)
                delta_new = (b_prior + 0.5 * ss) / (n / 2 + a - 1)
                change = max(np.max(np.abs(gamma_new - gamma)), np.max(np.abs(delta_new - delta)))
                gamma, delta = gamma_new, delta_new
                if change < self.tolerance:
                    break
            self.gamma_.append(gamma)
            self.delta_.append(delta)
        self.gamma_, self.delta_ = np.array(self.gamma_), np.array(self.delta_)  # type: ignore[assignment]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        values, batch = self._split(X)
        z = (values - self.mean_) / self.sd_
        out = z.copy()
        for i, b in enumerate(self.batches_):
            rows = batch == b
            out[rows] = (z[rows] - self.gamma_[i]) / np.sqrt(self.delta_[i])
        unseen = ~np.isin(batch, self.batches_)
        if unseen.any():
            log.warning(
                "ComBat: %d row(s) from batches not seen in training are not harmonised", int(unseen.sum())
            )
        return out * self.sd_ + self.mean_

    @staticmethod
    def _split(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        X = np.asarray(X, dtype=float)
        return X[:, :-1], X[:, -1]
