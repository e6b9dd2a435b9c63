"""CSIM (cosine similarity of face-identity embeddings) and, with dlib, the descriptor distance and verification.

Two embedding backends:

* ``DlibIdentity`` (offline default): dlib's 128-d face descriptor (``dlib_face_recognition_resnet_model_v1.dat``)
  on a face found by dlib's HOG detector and aligned by the 5-point shape predictor. The model files come from the
  ``face-recognition-models`` package, located by path (that package is never imported: its ``__init__`` needs
  ``pkg_resources``).
* ``ArcFaceIdentity`` (the paper's choice, Zakharov et al. §4): an ArcFace ONNX model the user supplies, run with
  onnxruntime (optional extra ``arcface``) on a 112x112 crop aligned to the standard 5-point template.

The paper's CSIM numbers are ArcFace numbers; dlib CSIM values are on a different scale (dlib descriptors of any
two faces have a cosine similarity well above zero) and must not be compared with the paper's table.

dlib CSIM saturates: it is 0.978-0.994 for every method of an evaluation, copy-source included, because dlib's
descriptors of any two faces point roughly the same way. dlib's own metric is the Euclidean distance of the
descriptors, with the same-person threshold 0.6 its model was trained for (``DLIB_SAME_PERSON_THRESHOLD``; dlib's
face recognition example: descriptors closer than 0.6 are usually one person; the model scores 99.38% on LFW).
``identity_distance`` and ``verified`` give that distance and whether it is below the threshold; over frames, the
share verified is the verification rate: does the output pass for the person, a question CSIM's compressed scale
does not answer.

With ArcFace neither is computed (``ArcFaceIdentity.same_person_threshold`` is None), by decision:
- the 0.6 threshold is dlib's, and no threshold is part of an ArcFace ONNX file: verification thresholds are chosen
  per model and per benchmark (e.g. by 10-fold cross-validation on LFW), and the model is whatever file the user
  passes, so any threshold here would be made up;
- ArcFace embeddings are L2-normalized, so their distance is sqrt(2 - 2 CSIM): CSIM again, on another scale.
The report states this reason (`NO_ARCFACE_THRESHOLD`) under its table (`metrics.report.markdown_table`).

A face that is not found gives ``None`` ("missing"), never a made-up value. ``CachedIdentity`` computes each
descriptor once per image (ground-truth frames are reused for every method and every T).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)

# ArcFace's standard 5-point template for 112x112 crops (insightface's "arcface_dst"): the eye centres (image left,
# image right), the nose tip and the mouth corners (image left, image right), in pixels.
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)

DLIB_SAME_PERSON_THRESHOLD = 0.6
"""dlib's descriptors of one person are closer than this (Euclidean), of two people farther (dlib's documented
threshold for ``dlib_face_recognition_resnet_model_v1``)."""

NO_ARCFACE_THRESHOLD = ("ID dist and Verified@0.6 are dlib's metric and threshold; with ArcFace they are not computed: "
                        "no verification threshold comes with an ArcFace ONNX model (it is chosen per model and "
                        "benchmark), and the distance of its unit embeddings is sqrt(2 - 2 CSIM), CSIM again")
"""Why an ArcFace evaluation has no identity distance or verification rate (shown in its report)."""


class FaceIdentity(Protocol):
    """Anything that maps an RGB image to an identity embedding (or None when no face is found).

    ``same_person_threshold``: the embedding distance below which two faces are one person, where the backend has a
    documented one (dlib: 0.6), else None (no distance or verification is reported).
    """

    name: str
    same_person_threshold: float | None

    def descriptor(self, image: np.ndarray) -> np.ndarray | None: ...


def face_models_dir() -> Path:
    """The folder of dlib model files shipped by ``face-recognition-models`` (located without importing it)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the dlib face models are missing: pip install face-recognition-models")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """cos(a, b) = a·b / (|a| |b|) in float64."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    if denominator == 0.0:
        raise ValueError("cosine_similarity: a zero-length embedding has no direction")
    return float(a @ b / denominator)


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    """|a - b|, the Euclidean distance of two descriptors in float64 (dlib's metric)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"descriptor_distance: descriptors of {a.size} and {b.size} dimensions")
    return float(np.linalg.norm(a - b))


def identity_distance(descriptor: np.ndarray | None, references: list[np.ndarray]) -> float | None:
    """Mean `descriptor_distance` of ``descriptor`` to each reference descriptor (several references: the mean,
    as CSIM takes the mean cosine); None when the face is missing or there is no reference."""
    if descriptor is None or not references:
        return None
    return float(np.mean([descriptor_distance(descriptor, reference) for reference in references]))


def verified(distance: float | None, threshold: float) -> float | None:
    """1.0 when ``distance`` is below the same-person ``threshold`` (the output passes for the person), 0.0 when
    not, None when there is no distance (no face). Averaged over frames it is the verification rate."""
    if distance is None:
        return None
    return float(distance < threshold)


def csim(identity: FaceIdentity, image: np.ndarray, reference: np.ndarray) -> float | None:
    """CSIM of ``image`` against ``reference``; None when a face is missing in either."""
    a = identity.descriptor(image)
    b = identity.descriptor(reference)
    if a is None or b is None:
        return None
    return cosine_similarity(a, b)


def _check_rgb(image: np.ndarray, who: str) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{who}: expected a uint8 RGB image [H, W, 3], got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


class _DlibFaceFinder:
    """HOG face detector + a shape predictor; picks the largest face (the HOG detector has false positives)."""

    def __init__(self, predictor_path: Path, upsample: int) -> None:
        import dlib

        if not predictor_path.is_file():
            raise FileNotFoundError(f"dlib shape predictor not found: {predictor_path}")
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(predictor_path))
        self.upsample = upsample

    def find(self, image: np.ndarray):
        """The shape (dlib.full_object_detection) of the largest detected face, or None."""
        faces = self.detector(image, self.upsample)
        if len(faces) == 0:
            return None
        face = max(faces, key=lambda r: r.width() * r.height())
        return self.predictor(image, face)


class DlibIdentity:
    """dlib's 128-d face descriptor (ResNet, LFW 99.38%), the offline CSIM backend.

    ``upsample`` is the HOG detector's upsampling count: 1 finds faces down to ~40 px (128x128 crops need it).
    """

    name = "dlib"
    same_person_threshold: float | None = DLIB_SAME_PERSON_THRESHOLD

    def __init__(self, models_dir: str | Path | None = None, upsample: int = 1) -> None:
        import dlib

        models_dir = Path(models_dir) if models_dir is not None else face_models_dir()
        recognizer_path = models_dir / "dlib_face_recognition_resnet_model_v1.dat"
        if not recognizer_path.is_file():
            raise FileNotFoundError(f"dlib face recognition model not found: {recognizer_path}; "
                                    "pip install face-recognition-models or pass models_dir")
        self.finder = _DlibFaceFinder(models_dir / "shape_predictor_5_face_landmarks.dat", upsample)
        self.recognizer = dlib.face_recognition_model_v1(str(recognizer_path))

    def descriptor(self, image: np.ndarray) -> np.ndarray | None:
        """The 128-d descriptor of the largest face in ``image`` (uint8 RGB), or None when no face is found."""
        image = _check_rgb(image, "DlibIdentity.descriptor")
        shape = self.finder.find(image)
        if shape is None:
            return None
        return np.asarray(self.recognizer.compute_face_descriptor(image, shape), dtype=np.float64)


def five_points_from_68(points: np.ndarray) -> np.ndarray:
    """ArcFace's 5 points from iBUG-68 landmarks: eye centres (36-41, 42-47), nose tip (30), mouth corners (48, 54)."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"five_points_from_68: expected [68, 2] landmarks, got {points.shape}")
    return np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]])


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation) mapping ``source`` points onto ``target`` points
    in the least-squares sense (Umeyama 1991, without reflection)."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mean_s, mean_t = source.mean(0), target.mean(0)
    s, t = source - mean_s, target - mean_t
    covariance = t.T @ s / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(singular) @ d) / s.var(0).sum())
    translation = mean_t - scale * rotation @ mean_s
    return np.hstack([scale * rotation, translation[:, None]])


def align_arcface(image: np.ndarray, five_points: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp ``image`` so that its 5 points land on ArcFace's template; returns uint8 RGB [size, size, 3]."""
    import cv2

    template = ARCFACE_TEMPLATE_112 * (size / 112.0)
    matrix = similarity_transform(five_points, template)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


class ArcFaceIdentity:
    """ArcFace embeddings from a user-supplied ONNX model (e.g. insightface's ``w600k_r50.onnx``), via onnxruntime.

    Faces are found with dlib's HOG detector and 68-point predictor, aligned to the 5-point template at 112x112,
    scaled to [-1, 1] ((x - 127.5) / 127.5) in RGB NCHW order, and embedded; the embedding is L2-normalized.
    """

    name = "arcface"
    same_person_threshold: float | None = None  # none documented for a user's ONNX file: see NO_ARCFACE_THRESHOLD

    def __init__(self, model_path: str | Path, models_dir: str | Path | None = None, upsample: int = 1) -> None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"ArcFace ONNX model not found: {model_path}")
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("ArcFace CSIM needs onnxruntime: pip install 'talkinghead[arcface]' "
                              "(or use the default dlib identity backend)") from error
        models_dir = Path(models_dir) if models_dir is not None else face_models_dir()
        self.finder = _DlibFaceFinder(models_dir / "shape_predictor_68_face_landmarks.dat", upsample)
        self.session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        shape = model_input.shape
        self.size = shape[2] if len(shape) == 4 and isinstance(shape[2], int) else 112

    def embed_aligned(self, aligned: np.ndarray) -> np.ndarray:
        """Embedding of an already aligned uint8 RGB crop [size, size, 3]."""
        blob = (aligned.astype(np.float32) - 127.5) / 127.5
        blob = blob.transpose(2, 0, 1)[None]  # [H, W, 3] -> [1, 3, H, W]
        embedding = np.asarray(self.session.run(None, {self.input_name: blob})[0], dtype=np.float64).ravel()
        return embedding / np.linalg.norm(embedding)

    def descriptor(self, image: np.ndarray) -> np.ndarray | None:
        """The ArcFace embedding of the largest face in ``image`` (uint8 RGB), or None when no face is found."""
        image = _check_rgb(image, "ArcFaceIdentity.descriptor")
        shape = self.finder.find(image)
        if shape is None:
            return None
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        return self.embed_aligned(align_arcface(image, five_points_from_68(points), self.size))


def image_key(image: np.ndarray) -> str:
    """A content hash of an image (shape, dtype and bytes), used as a cache key."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{image.shape}{image.dtype}".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


class CachedIdentity:
    """Wraps an identity backend so that each distinct image is embedded once.

    Keys are content hashes, or explicit keys (e.g. ``"video_12/frame_0031"``) passed to ``descriptor``.
    Missing faces are cached too (as None). ``save``/``load`` keep the cache across runs (an .npz file), so a
    resumed evaluation does not recompute the ground truth's descriptors.
    """

    def __init__(self, backend: FaceIdentity) -> None:
        self.backend = backend
        self.name = backend.name
        self.same_person_threshold = getattr(backend, "same_person_threshold", None)
        self._cache: dict[str, np.ndarray | None] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._cache)

    def descriptor(self, image: np.ndarray, key: str | None = None) -> np.ndarray | None:
        key = key if key is not None else image_key(image)
        if key in self._cache:
            self.hits += 1
            return self._cache[key]
        self.misses += 1
        value = self.backend.descriptor(image)
        self._cache[key] = value
        return value

    def save(self, path: str | Path) -> None:
        """Write the cache to ``path`` (.npz); missing faces are stored as empty arrays."""
        arrays = {key: (value if value is not None else np.zeros(0)) for key, value in self._cache.items()}
        np.savez(Path(path), __backend__=np.array(self.name), **arrays)

    def load(self, path: str | Path) -> None:
        """Merge a cache written by ``save``; refuses a cache made by another backend."""
        with np.load(Path(path), allow_pickle=False) as data:
            backend = str(data["__backend__"])
            if backend != self.name:
                raise ValueError(f"{path}: descriptor cache was made by the '{backend}' backend, not '{self.name}'; "
                                 "delete it or use the matching backend")
            for key in data.files:
                if key != "__backend__":
                    value = data[key]
                    self._cache[key] = value if value.size else None
