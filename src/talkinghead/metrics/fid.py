"""Fréchet distance and FID (Heusel et al. 2017), the paper's realism metric (§4); KID and intervals for both.

``frechet_distance`` is this project's own implementation of

    d² = |mu1 - mu2|² + Tr(S1 + S2 - 2 (S1 S2)^½)

computing Tr((S1 S2)^½) as the sum of square roots of the eigenvalues of the symmetric PSD matrix
S1^½ S2 S1^½ (same spectrum as S1 S2), which avoids the complex round-off of a general matrix square root.

``compute_fid`` embeds images with the standard FID Inception network (the TF 2015-12-05 graph ported by
``pytorch-fid``, optional extra ``fid``). Its weights (``pt_inception-2015-12-05-6726825d.pth``) come from a path
the user gives, or torch's hub cache, or a download when allowed. When the package or the weights cannot be had
the result says "unavailable" and why: FID is never approximated by another network and never made up.
pytorch-fid needs torchvision, which does not import beside this project's CPU torch on some machines; that also
gives an "unavailable" result.

Small sets. An evaluation has ~200 frames per (method, T) in 1280 (MobileNetV2) or 2048 (Inception) dimensions, so
the covariances are rank-deficient and the Fréchet distance is one biased number. Two things make it usable:

* ``kernel_distance``, KID (Bińkowski et al. 2018): the unbiased estimate of the squared MMD with the cubic
  polynomial kernel k(x, y) = (x·y / d + 1)³. It is unbiased at any set size, which is why it suits small sets. The
  standard recipe averages it over random subsets of 1000 images, a cost device for 50k-image sets; with ~200
  images a subset as large as the set is the set itself (every subset equal, spread 0), so here it is computed once
  over the whole sets, a single "subset".
* ``jackknife_interval``: an interval for either from the delete-one-video jackknife (videos are the independent
  units, as in the report's Student-t intervals; frames of one video are alike and the real and generated frames of
  a video belong together). Resampling frames with replacement (the bootstrap) does not work for the Fréchet
  distance here: duplicated frames lower the covariances' rank, and on 192 synthetic 1280-d features the bootstrap
  distances sat 18% above the estimate (20.0 vs 16.9), so the 95% percentile interval [19.7, 20.4] did not contain
  it, and their spread was 2.6x the distance's true spread over fresh draws. The video jackknife's standard error
  was 0.8-1.35x that true spread for both the distance and KID (``tests/test_metrics_fid.py``).

With fewer samples than dimensions, ``frechet_distance_of_features`` computes the distance in sample space
(``frechet_distance_low_rank``: Tr((S1 S2)^½) is the nuclear norm of X1 X2ᵀ for centred, scaled samples X), the
same value in O(n m d) instead of O(d³): 8 ms instead of 0.8 s at 192 x 1280, so the jackknife's one distance per
video costs little.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np

logger = logging.getLogger(__name__)

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SHA256_PREFIX = "6726825d"


@dataclass(frozen=True)
class FidResult:
    """An FID value, or the reason it is unavailable (``value`` is None then)."""

    value: float | None
    reason: str = ""
    num_real: int = 0
    num_fake: int = 0

    @property
    def available(self) -> bool:
        return self.value is not None

    def to_json(self) -> dict:
        if self.available:
            return {"value": self.value, "num_real": self.num_real, "num_fake": self.num_fake}
        return {"value": None, "unavailable": self.reason}


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (unbiased, N - 1) of features [N, D]."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"feature_statistics: need features [N >= 2, D], got {features.shape}")
    return features.mean(0), np.cov(features, rowvar=False)


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"frechet_distance: shapes mu {mu1.shape}/{mu2.shape}, sigma {sigma1.shape}/{sigma2.shape} "
                         "do not describe two Gaussians of one dimension")
    root1 = _symmetric_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1  # S1^½ S2 S1^½: symmetric PSD, same eigenvalues as S1 S2
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt_product = float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    difference = mu1 - mu2
    return float(difference @ difference + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product)


def frechet_distance_of_features(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between two feature sets [N, D] and [M, D]: `frechet_distance_low_rank` when a set has fewer
    rows than dimensions (the same value, far cheaper), else `frechet_distance` of their statistics."""
    if min(len(real), len(fake)) < np.shape(real)[-1]:
        return frechet_distance_low_rank(real, fake)
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))


def frechet_distance_low_rank(real: np.ndarray, fake: np.ndarray) -> float:
    """`frechet_distance_of_features` of [N, D] and [M, D] computed without a D x D matrix.

    With X = (features - mean) / sqrt(N - 1), S = XᵀX, so Tr(S) = |X|²_F and the non-zero eigenvalues of S1 S2 are
    the squared singular values of X1 X2ᵀ [N, M]: Tr((S1 S2)^½) is the nuclear norm of X1 X2ᵀ (an identity, not an
    approximation). Cheap when N, M << D, as in an evaluation (192 frames, 1280-d features)."""
    real, fake = _check_sets(real, fake, "frechet_distance_low_rank")
    mean_real, mean_fake = real.mean(0), fake.mean(0)
    x1 = (real - mean_real) / np.sqrt(len(real) - 1)
    x2 = (fake - mean_fake) / np.sqrt(len(fake) - 1)
    trace_sqrt_product = float(np.linalg.svd(x1 @ x2.T, compute_uv=False).sum())
    difference = mean_real - mean_fake
    return float(difference @ difference + (x1 * x1).sum() + (x2 * x2).sum() - 2.0 * trace_sqrt_product)


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """KID's kernel k(x, y) = (x·y / d + 1)³ between the rows of a [N, D] and b [M, D]: [N, M]."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def _check_sets(real: np.ndarray, fake: np.ndarray, who: str, groups: tuple[Sequence, Sequence] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or len(real) < 2 or len(fake) < 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"{who}: need features [N >= 2, D], [M >= 2, D], got {real.shape}, {fake.shape}")
    if groups is not None and (len(groups[0]), len(groups[1])) != (len(real), len(fake)):
        raise ValueError(f"{who}: {len(groups[0])}/{len(groups[1])} group labels for {len(real)}/{len(fake)} rows")
    return real, fake


def kernel_distance_of_kernels(k_real: np.ndarray, k_fake: np.ndarray, k_cross: np.ndarray) -> float:
    """The unbiased MMD² from kernel matrices [N, N] (real), [M, M] (fake) and [N, M] (real x fake):

        Σ_{i≠j} k(x_i, x_j) / (N (N - 1)) + Σ_{i≠j} k(y_i, y_j) / (M (M - 1)) - 2 Σ_{i,j} k(x_i, y_j) / (N M)."""
    n, m = len(k_real), len(k_fake)
    within_real = (k_real.sum() - np.trace(k_real)) / (n * (n - 1))
    within_fake = (k_fake.sum() - np.trace(k_fake)) / (m * (m - 1))
    return float(within_real + within_fake - 2.0 * k_cross.mean())


def kernel_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """KID between feature sets [N, D] and [M, D]: `kernel_distance_of_kernels` with `polynomial_kernel`. Its
    expectation is the population MMD² (0 for one distribution) at any N and M, so a value can be negative; it is
    when the two sets are paired frames of the same videos (as in an evaluation) and closer to each other than
    independent draws would be (alternate frames of 6 shared clips: -0.004, the same frames blurred σ = 2: 0.24)."""
    real, fake = _check_sets(real, fake, "kernel_distance")
    return kernel_distance_of_kernels(polynomial_kernel(real, real), polynomial_kernel(fake, fake),
                                      polynomial_kernel(real, fake))


def jackknife_interval(statistic: Callable[[np.ndarray, np.ndarray], float], real_groups: Sequence,
                       fake_groups: Sequence, confidence: float = 0.95) -> dict:
    """A statistic of two sets with its delete-one-group jackknife interval.

    ``statistic(real_rows, fake_rows)`` takes the indices of the rows it keeps; groups are one label per row (e.g.
    the video), and a group's real and generated rows are left out together. The statistic is recomputed without
    each of the G groups (θ_g); the standard error is sqrt((G - 1) / G · Σ_g (θ_g - mean θ)²) (Efron's jackknife)
    and the interval value ± t_{(1+c)/2, G-1} · se. Returns ``{"value", "low", "high", "se", "groups"}``;
    low/high/se are None with fewer than 2 groups or when leaving a group out leaves a set under 2 rows."""
    from scipy import stats

    real_groups, fake_groups = np.asarray(real_groups), np.asarray(fake_groups)
    value = statistic(np.arange(len(real_groups)), np.arange(len(fake_groups)))
    groups = sorted(set(real_groups.tolist()) | set(fake_groups.tolist()))
    kept = [(np.flatnonzero(real_groups != g), np.flatnonzero(fake_groups != g)) for g in groups]
    if len(groups) < 2 or any(len(r) < 2 or len(f) < 2 for r, f in kept):
        return {"value": value, "low": None, "high": None, "se": None, "groups": len(groups)}
    left_out = np.array([statistic(r, f) for r, f in kept])
    count = len(groups)
    se = float(np.sqrt((count - 1) / count * ((left_out - left_out.mean()) ** 2).sum()))
    half = float(stats.t.ppf((1 + confidence) / 2, count - 1)) * se
    return {"value": value, "low": value - half, "high": value + half, "se": se, "groups": count}


def frechet_distance_interval(real: np.ndarray, fake: np.ndarray, real_groups: Sequence, fake_groups: Sequence,
                              confidence: float = 0.95) -> dict:
    """`frechet_distance_of_features` with its delete-one-group `jackknife_interval`."""
    real, fake = _check_sets(real, fake, "frechet_distance_interval", (real_groups, fake_groups))
    return jackknife_interval(lambda r, f: frechet_distance_of_features(real[r], fake[f]), real_groups, fake_groups,
                              confidence)


def frechet_distance_change_interval(real: np.ndarray, fake: np.ndarray, reference: np.ndarray, groups: Sequence,
                                     confidence: float = 0.95) -> dict:
    """How much ``fake``'s FD to ``real`` differs from ``reference``'s, relative (FD(real, fake) / FD(real, reference)
    − 1), with a paired delete-one-group `jackknife_interval`: the three sets hold the same targets row for row
    (e.g. two models' outputs for one evaluation's frames), so a group (a video) leaves all three together, and what
    the videos share cancels out of the interval. ``groups``: one label per row."""
    real, fake = _check_sets(real, fake, "frechet_distance_change_interval", (groups, groups))
    _, reference = _check_sets(real, reference, "frechet_distance_change_interval", (groups, groups))

    def change(rows: np.ndarray, _: np.ndarray) -> float:
        return frechet_distance_of_features(real[rows], fake[rows]) / frechet_distance_of_features(
            real[rows], reference[rows]) - 1.0

    return jackknife_interval(change, groups, groups, confidence)


def kernel_distance_interval(real: np.ndarray, fake: np.ndarray, real_groups: Sequence, fake_groups: Sequence,
                             confidence: float = 0.95) -> dict:
    """`kernel_distance` with its delete-one-group `jackknife_interval`; the kernel matrices are computed once and
    each left-out estimate takes their rows and columns (O(N²) per group instead of O(N² D))."""
    real, fake = _check_sets(real, fake, "kernel_distance_interval", (real_groups, fake_groups))
    k_real, k_fake = polynomial_kernel(real, real), polynomial_kernel(fake, fake)
    k_cross = polynomial_kernel(real, fake)
    return jackknife_interval(lambda r, f: kernel_distance_of_kernels(k_real[np.ix_(r, r)], k_fake[np.ix_(f, f)],
                                                                      k_cross[np.ix_(r, f)]),
                              real_groups, fake_groups, confidence)


def default_weights_path() -> Path:
    """Where torch's hub keeps the FID Inception weights after pytorch-fid downloaded them."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


class FidUnavailable(RuntimeError):
    """FID cannot be computed here (missing package or weights); the message says what to do."""


class FidInception:
    """pytorch-fid's FID Inception (pool3, 2048-d) with its weights from a file path.

    Raises ``FidUnavailable`` when pytorch-fid (or torchvision under it) cannot be imported or no weights are found.
    """

    def __init__(self, weights_path: str | Path | None = None, allow_download: bool = False,
                 device: str = "cpu") -> None:
        import torch

        try:
            from pytorch_fid import inception as fid_inception
        except Exception as error:  # torchvision may fail with RuntimeError/AttributeError, not only ImportError
            raise FidUnavailable(f"pytorch-fid cannot be imported ({type(error).__name__}: {error}); "
                                 "install the 'fid' extra with a torchvision that matches torch") from error
        if weights_path is None and default_weights_path().is_file():
            weights_path = default_weights_path()
        if weights_path is not None:
            weights_path = Path(weights_path)
            if not weights_path.is_file():
                raise FidUnavailable(f"FID Inception weights not found at {weights_path}")
            from talkinghead.perceptual_weights import sha256_of

            if not sha256_of(weights_path).startswith(FID_WEIGHTS_SHA256_PREFIX):
                raise FidUnavailable(f"{weights_path} is not {FID_WEIGHTS_FILE} (sha256 does not start with "
                                     f"{FID_WEIGHTS_SHA256_PREFIX}); FID needs exactly the standard weights")
            state_dict = torch.load(weights_path, map_location="cpu", weights_only=True)
            # pytorch-fid always fetches its weights by URL; hand it the file instead.
            with mock.patch.object(fid_inception, "load_state_dict_from_url", lambda *args, **kwargs: state_dict):
                model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
        elif allow_download:
            try:
                model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
            except Exception as error:
                raise FidUnavailable(f"downloading the FID Inception weights failed ({error}); "
                                     f"pass the path of {FID_WEIGHTS_FILE}") from error
        else:
            raise FidUnavailable(f"no FID Inception weights: pass the path of {FID_WEIGHTS_FILE} "
                                 f"(e.g. --fid-weights), put it at {default_weights_path()}, or allow the download")
        self.model = model.eval().to(device)
        self.device = device

    def features(self, images: Iterable[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Pool3 features [N, 2048] of uint8 RGB images (resized to 299x299 by the network)."""
        import torch

        def embed(batch: np.ndarray) -> np.ndarray:
            tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div(255.0)  # [B, 3, H, W] in [0, 1]
            with torch.no_grad():
                output = self.model(tensor.to(self.device))[0]  # [B, 2048, 1, 1]
            return output.flatten(1).cpu().double().numpy()

        return features_in_batches(images, batch_size, embed, 2048)


def features_in_batches(images: Iterable[np.ndarray], batch_size: int, embed: Callable[[np.ndarray], np.ndarray],
                        dim: int) -> np.ndarray:
    """``embed`` over ``images`` taken ``batch_size`` at a time ([B, H, W, 3] -> [B, dim]), concatenated: [N, dim];
    [0, dim] for no images."""
    batches, batch = [], []
    for image in images:
        batch.append(image)
        if len(batch) == batch_size:
            batches.append(embed(np.stack(batch)))
            batch.clear()
    if batch:
        batches.append(embed(np.stack(batch)))
    return np.concatenate(batches) if batches else np.zeros((0, dim))


def compute_fid(real_images: Iterable[np.ndarray], fake_images: Iterable[np.ndarray],
                weights_path: str | Path | None = None, allow_download: bool = False, device: str = "cpu",
                network: FidInception | None = None) -> FidResult:
    """FID between two sets of uint8 RGB images, or an unavailable result that says why.

    Pass ``network`` to reuse one loaded Inception across many calls (one per method and T).
    """
    if network is None:
        try:
            network = FidInception(weights_path, allow_download=allow_download, device=device)
        except FidUnavailable as error:
            logger.warning("FID unavailable: %s", error)
            return FidResult(value=None, reason=str(error))
    real = network.features(real_images)
    fake = network.features(fake_images)
    if len(real) < 2 or len(fake) < 2:
        return FidResult(value=None, reason=f"FID needs at least 2 images per set (got {len(real)}, {len(fake)})",
                         num_real=len(real), num_fake=len(fake))
    return FidResult(value=frechet_distance_of_features(real, fake), num_real=len(real), num_fake=len(fake))
