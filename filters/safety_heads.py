"""NSFW and watermark scores, as LAION-5B published them per sample (``punsafe``, ``pwatermark``;
Schuhmann et al. 2022, section 3.3 and appendix).

Two scorers, both loading weights without running code:

* ``SafetyHead``: a small MLP on CLIP image embeddings, the form of LAION's NSFW detector
  (github.com/LAION-AI/CLIP-based-NSFW-Detector: an autokeras model; for ViT-L/14 a Normalization
  layer, then Dense 64, 512, 256 with ReLU, then Dense 1 and a sigmoid; for ViT-B/32 Dense 32, 32, 1).
* ``ImageClassifierScorer``: any Hugging Face image-classification model, for scores that need the
  pixels. LAION's watermark detector is such a classifier (a timm EfficientNet,
  github.com/LAION-AI/LAION-5B-WatermarkDetection), not a head on embeddings.

Head file format (``.safetensors``, float32 tensors; no pickle is ever read):

* ``layers.{i}.weight``: (out, in) and ``layers.{i}.bias``: (out,), for i = 0..n-1; the ``in`` of
  layer i+1 is the ``out`` of layer i. ReLU between layers.
* optional ``normalize.mean`` and ``normalize.variance``: (in,) of layer 0, applied first as Keras'
  Normalization layer does (Keras 2.6+ and 3): ``(x - mean) / max(sqrt(variance), 1e-7)``, 1e-7 being
  Keras' default ``epsilon()``.
* the last layer's output of size 1 goes through a sigmoid; of size k > 1 through a softmax, and the
  metadata entry ``index`` names the positive class.
* metadata (str -> str): ``kind`` ("nsfw", "watermark" or free text), ``embedding`` (the CLIP model
  the head was trained on, e.g. "ViT-L-14"), ``l2_normalize`` ("true"/"false": scale each embedding
  to unit length before everything else; LAION's detector was trained on unit-length embeddings).

LAION publishes its NSFW detector as a TensorFlow SavedModel folder (``clip_autokeras_binary_nsfw.zip``).
Converting it takes one step where TensorFlow and autokeras are installed, then this module::

    model = tf.keras.models.load_model(folder, custom_objects=autokeras.CUSTOM_OBJECTS)
    model.save_weights("nsfw.h5")   # Keras 2 HDF5; model.save("nsfw.h5") works too
    python -m filters.safety_heads convert --keras nsfw.h5 --out nsfw.safetensors --kind nsfw --embedding ViT-L-14
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

import numpy as np

KERAS_EPSILON = 1e-7  # keras.backend.epsilon(), the floor of Normalization's standard deviation
L2_EPSILON = 1e-12  # torch.nn.functional.normalize's floor of the norm
HEAD_SUFFIX = ".safetensors"
CONVERT_HINT = ("convert it: a Keras .h5 with `python -m filters.safety_heads convert --keras X.h5 --out Y.safetensors "
                "--kind nsfw --embedding ViT-L-14`; torch weights with safetensors.torch.save_file (format in "
                "filters/safety_heads.py)")
FOREIGN_MAGIC = {  # first bytes of the formats people have heads in
    b"PK\x03\x04": "a zip archive (torch.save checkpoints are zipped pickles)",
    b"\x89HDF": "an HDF5 file (Keras .h5)",
    b"\x80": "a pickle",
}


class SafetyHeadError(ValueError):
    """A head or classifier file that cannot be used, or inputs that do not fit it."""


@dataclass(frozen=True)
class Normalize:
    mean: np.ndarray
    std: np.ndarray  # max(sqrt(variance), KERAS_EPSILON)


class SafetyHead:
    """An MLP scoring CLIP image embeddings; load with ``load_head``."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], normalize: Normalize | None, *,
                 kind: str, embedding: str, l2_normalize: bool, index: int | None):
        self.layers = layers
        self.normalize = normalize
        self.kind = kind
        self.embedding = embedding
        self.l2_normalize = l2_normalize
        self.index = index  # the positive class of a softmax head; None for a sigmoid head

    @property
    def input_size(self) -> int:
        return self.layers[0][0].shape[1]

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """One score in [0, 1] per row of ``embeddings`` (batch, dim), float32."""
        x = self._checked(embeddings)
        if self.l2_normalize:
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(L2_EPSILON))
        if self.normalize is not None:
            x = (x - self.normalize.mean) / self.normalize.std
        for weight, bias in self.layers[:-1]:
            x = np.maximum(x @ weight.T + bias, np.float32(0))
        weight, bias = self.layers[-1]
        logits = x @ weight.T + bias
        if self.index is None:
            return _sigmoid(logits[:, 0])
        return _softmax(logits)[:, self.index]

    def _checked(self, embeddings: np.ndarray) -> np.ndarray:
        x = np.asarray(embeddings)
        if x.ndim != 2:
            raise SafetyHeadError(f"embeddings must be (batch, dim), got shape {x.shape}")
        if x.shape[1] != self.input_size:
            raise SafetyHeadError(f"embeddings have {x.shape[1]} dimensions but the {self.kind} head takes "
                                  f"{self.input_size} (it was trained on {self.embedding} embeddings)")
        return x.astype(np.float32, copy=False)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Without overflow: exp of a non-positive number only."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def foreign_format(path: str) -> str | None:
    """What a file that is not safetensors looks like, from its first bytes (None: unrecognised)."""
    with open(path, "rb") as f:
        start = f.read(8)
    return next((name for magic, name in FOREIGN_MAGIC.items() if start.startswith(magic)), None)


def load_head(path: str) -> SafetyHead:
    """A head from a ``.safetensors`` file in the format above; anything else is refused unread."""
    if not path.endswith(HEAD_SUFFIX):
        raise SafetyHeadError(f"{path}: a safety head must be a {HEAD_SUFFIX} file (pickled weights can run "
                              f"code and are not read); {CONVERT_HINT}")
    tensors, metadata = _read_safetensors(path)
    try:
        return _head_from(tensors, metadata)
    except SafetyHeadError as err:
        raise SafetyHeadError(f"{path}: {err}") from None


def _read_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            return {name: _numpy_tensor(f, name, path) for name in f.keys()}, f.metadata() or {}
    except SafetensorError as err:
        looks = foreign_format(path)
        what = f"it is {looks}" if looks else f"not a safetensors file ({err})"
        raise SafetyHeadError(f"{path}: {what}, refused unread; {CONVERT_HINT}") from None


def _numpy_tensor(f, name: str, path: str) -> np.ndarray:
    try:
        return f.get_tensor(name)
    except TypeError as err:  # bfloat16 and other types numpy lacks
        raise SafetyHeadError(f"{path}: {name}: {err}; the format stores float32") from None


def _head_from(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> SafetyHead:
    layers = _layers(tensors)
    normalize = _normalize(tensors, layers[0][0].shape[1])
    known = {f"layers.{i}.{part}" for i in range(len(layers)) for part in ("weight", "bias")}
    unknown = sorted(set(tensors) - known - {"normalize.mean", "normalize.variance"})
    if unknown:
        raise SafetyHeadError(f"unknown tensors {unknown}")
    for key in ("kind", "embedding", "l2_normalize"):
        if key not in metadata:
            raise SafetyHeadError(f"metadata {key!r} missing (the head format needs kind, embedding, l2_normalize)")
    if metadata["l2_normalize"] not in ("true", "false"):
        raise SafetyHeadError(f"metadata l2_normalize must be 'true' or 'false', not {metadata['l2_normalize']!r}")
    return SafetyHead(layers, normalize, kind=metadata["kind"], embedding=metadata["embedding"],
                      l2_normalize=metadata["l2_normalize"] == "true",
                      index=_positive_index(metadata, layers[-1][0].shape[0]))


def _float32(tensors: dict[str, np.ndarray], name: str) -> np.ndarray:
    tensor = tensors[name]
    if tensor.dtype != np.float32:
        raise SafetyHeadError(f"{name} is {tensor.dtype}, the format stores float32")
    return tensor


def _layers(tensors: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    while f"layers.{len(layers)}.weight" in tensors:
        i = len(layers)
        if f"layers.{i}.bias" not in tensors:
            raise SafetyHeadError(f"layers.{i}.bias missing")
        weight, bias = _float32(tensors, f"layers.{i}.weight"), _float32(tensors, f"layers.{i}.bias")
        if weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise SafetyHeadError(f"layer {i}: weight {weight.shape} must be (out, in) and bias {bias.shape} (out,)")
        if layers and weight.shape[1] != layers[-1][0].shape[0]:
            raise SafetyHeadError(f"layer {i} takes {weight.shape[1]} inputs but layer {i - 1} gives "
                                  f"{layers[-1][0].shape[0]} outputs")
        layers.append((weight, bias))
    if not layers:
        raise SafetyHeadError("no layers.0.weight: not a safety head")
    return layers


def _normalize(tensors: dict[str, np.ndarray], size: int) -> Normalize | None:
    present = [name in tensors for name in ("normalize.mean", "normalize.variance")]
    if not any(present):
        return None
    if not all(present):
        raise SafetyHeadError("normalize.mean and normalize.variance go together")
    mean, variance = _float32(tensors, "normalize.mean"), _float32(tensors, "normalize.variance")
    if mean.shape != (size,) or variance.shape != (size,):
        raise SafetyHeadError(f"normalize.mean {mean.shape} and normalize.variance {variance.shape} must be "
                              f"({size},), the input size of layer 0")
    return Normalize(mean, np.maximum(np.sqrt(variance), np.float32(KERAS_EPSILON)))


def _positive_index(metadata: dict[str, str], outputs: int) -> int | None:
    if outputs == 1:
        if "index" in metadata:
            raise SafetyHeadError("metadata 'index' is for softmax heads (last layer size > 1); this one has 1 output")
        return None
    index = metadata.get("index", "")
    if not index.isdigit() or int(index) >= outputs:
        raise SafetyHeadError(f"the last layer has {outputs} outputs (softmax): metadata 'index' must name the "
                              f"positive class, 0..{outputs - 1}, not {index!r}")
    return int(index)


def save_head(path: str, layers: list[tuple[np.ndarray, np.ndarray]], *, kind: str, embedding: str,
              l2_normalize: bool, mean: np.ndarray | None = None, variance: np.ndarray | None = None) -> SafetyHead:
    """Write a head file (checked by loading it back, which is returned)."""
    from safetensors.numpy import save_file

    tensors = {}
    for i, (weight, bias) in enumerate(layers):
        tensors[f"layers.{i}.weight"] = np.ascontiguousarray(weight, dtype=np.float32)
        tensors[f"layers.{i}.bias"] = np.ascontiguousarray(bias, dtype=np.float32)
    if mean is not None and variance is not None:
        tensors["normalize.mean"] = np.ascontiguousarray(mean, dtype=np.float32).reshape(-1)
        tensors["normalize.variance"] = np.ascontiguousarray(variance, dtype=np.float32).reshape(-1)
    metadata = {"kind": kind, "embedding": embedding, "l2_normalize": "true" if l2_normalize else "false"}
    save_file(tensors, path, metadata=metadata)
    return load_head(path)


def keras_h5_layers(h5_path: str) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The (layer name, {weight name: array}) of a Keras 2 HDF5 file, in the model's layer order.

    ``model.save_weights("x.h5")`` puts the ``layer_names`` attribute at the root, ``model.save("x.h5")``
    under ``model_weights``; each layer's group lists its weights in ``weight_names``
    ("dense/kernel:0"), stored at ``<layer>/<layer>/kernel:0``. Weight names lose their scope and ":0".
    """
    try:
        import h5py
    except ImportError:
        raise SafetyHeadError("reading Keras .h5 files needs h5py: pip install h5py") from None
    try:
        with h5py.File(h5_path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in group.attrs:
                raise SafetyHeadError(f"{h5_path}: no layer_names attribute: not a Keras 2 HDF5 weights file "
                                      "(Keras 3 .weights.h5 files are not read)")
            return [(name, _keras_weights(group[name])) for name in map(_text, group.attrs["layer_names"])]
    except OSError as err:
        raise SafetyHeadError(f"{h5_path}: cannot read as HDF5 ({err})") from None


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _keras_weights(layer) -> dict[str, np.ndarray]:
    names = map(_text, layer.attrs.get("weight_names", []))
    return {name.rsplit("/", 1)[-1].split(":")[0]: np.asarray(layer[name]) for name in names}


def head_from_keras_layers(layers: list[tuple[str, dict[str, np.ndarray]]]
                           ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray | None, np.ndarray | None]:
    """Dense layers as (weight (out, in), bias) and the Normalization mean and variance (None when
    absent) from Keras layers. Keras kernels are (in, out). Layers without weights (ReLU, Dropout,
    the sigmoid Activation, autokeras' numeric-only MultiCategoryEncoding) compute nothing to convert;
    a layer with other weights (BatchNormalization, ...) is refused, as the head format has no place for it."""
    dense, mean, variance = [], None, None
    for name, weights in layers:
        if not weights:
            continue
        if set(weights) == {"kernel", "bias"}:
            dense.append((weights["kernel"].T, weights["bias"]))
        elif {"mean", "variance"} <= set(weights) <= {"mean", "variance", "count"} and not dense and mean is None:
            mean, variance = weights["mean"], weights["variance"]
        else:
            raise SafetyHeadError(f"Keras layer {name!r} with weights {sorted(weights)} does not fit the head format "
                                  "(one Normalization first, then Dense layers)")
    if not dense:
        raise SafetyHeadError("no Dense layers found")
    return dense, mean, variance


def convert_keras_h5(h5_path: str, out_path: str, *, kind: str, embedding: str, l2_normalize: bool = True
                     ) -> SafetyHead:
    """Convert a Keras 2 .h5 weights file (LAION's NSFW detector, saved as the module doc says) to a
    head file; ``l2_normalize``: LAION's detector takes unit-length embeddings."""
    if not out_path.endswith(HEAD_SUFFIX):
        raise SafetyHeadError(f"{out_path}: the output must end in {HEAD_SUFFIX}")
    dense, mean, variance = head_from_keras_layers(keras_h5_layers(h5_path))
    return save_head(out_path, dense, kind=kind, embedding=embedding, l2_normalize=l2_normalize,
                     mean=mean, variance=variance)


class ImageClassifierScorer:
    """The probability of one label of a Hugging Face image-classification model (a hub id, or a folder
    written by ``save_pretrained``); safetensors weights only, and no code from the model repository."""

    def __init__(self, name_or_dir: str, label: str, device: str = "cpu"):
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        local = os.path.isdir(name_or_dir)
        if local and not any(n.endswith(HEAD_SUFFIX) for n in os.listdir(name_or_dir)):
            raise SafetyHeadError(f"{name_or_dir}: no .safetensors weights (pickled weights such as "
                                  "pytorch_model.bin can run code and are not read); save the model with "
                                  "save_pretrained(folder, safe_serialization=True)")
        options = {"local_files_only": local, "trust_remote_code": False}
        try:
            self.processor = AutoImageProcessor.from_pretrained(name_or_dir, **options)
            model = AutoModelForImageClassification.from_pretrained(name_or_dir, use_safetensors=True, **options)
        except OSError as err:
            raise SafetyHeadError(f"cannot load image classifier {name_or_dir!r} with safetensors weights: {err}"
                                  ) from None
        labels = {name: int(i) for i, name in model.config.id2label.items()}
        if label not in labels:
            raise SafetyHeadError(f"label {label!r} is not one of {name_or_dir}'s labels: {sorted(labels)}")
        self.index = labels[label]
        self.device = device
        self.model = model.to(device).eval()

    def scores(self, images: list) -> np.ndarray:
        """Softmax probability of the label for each PIL image, float32."""
        import torch

        if not images:
            return np.zeros(0, dtype=np.float32)
        inputs = self.processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**inputs.to(self.device)).logits.float()
        return logits.softmax(dim=-1)[:, self.index].cpu().numpy().astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m filters.safety_heads", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help="convert a Keras 2 .h5 head (LAION's NSFW detector) to safetensors")
    convert.add_argument("--keras", required=True, help="the .h5 file (model.save_weights or model.save)")
    convert.add_argument("--out", required=True, help="the .safetensors file to write")
    convert.add_argument("--kind", required=True, help="nsfw, watermark or free text")
    convert.add_argument("--embedding", required=True, help="the CLIP model the head was trained on, e.g. ViT-L-14")
    convert.add_argument("--no-l2-normalize", action="store_true",
                         help="the head takes embeddings as they are, not scaled to unit length")
    args = parser.parse_args(argv)
    try:
        head = convert_keras_h5(args.keras, args.out, kind=args.kind, embedding=args.embedding,
                                l2_normalize=not args.no_l2_normalize)
    except SafetyHeadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sizes = [head.input_size] + [weight.shape[0] for weight, _ in head.layers]
    print(f"wrote {args.out}: {head.kind} head for {head.embedding}, layers {sizes}, "
          f"normalization {'yes' if head.normalize is not None else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
