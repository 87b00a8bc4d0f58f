"""Safety heads (filters/safety_heads.py): a head file scores embeddings as the same MLP in torch
does; pickles are refused unread; shapes are checked; a Keras 2 .h5 (LAION's NSFW detector's
framework) converts to the same scores; a Hugging Face image classifier gives its label's probability."""

from __future__ import annotations

import json
import pathlib
import pickle
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from test_model_files import Payload

from filters.safety_heads import (
    ImageClassifierScorer,
    SafetyHeadError,
    convert_keras_h5,
    head_from_keras_layers,
    load_head,
    main,
)

pytestmark = pytest.mark.timeout(120)

LAION_L14_SIZES = [768, 64, 512, 256, 1]  # LAION-AI/CLIP-based-NSFW-Detector, ViT-L/14 autokeras model


def random_layers(sizes: list[int], seed: int = 0, input_scale: float = 1.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Dense layers (out, in) scaled for inputs of about ``input_scale`` per feature, so that
    scores spread instead of saturating, as a trained net's do."""
    rng = np.random.default_rng(seed)
    scales = [1.5 / input_scale] + [1.5] * (len(sizes) - 2)
    return [(rng.normal(0, scale / np.sqrt(n_in), (n_out, n_in)).astype(np.float32),
             rng.normal(0, 0.1, n_out).astype(np.float32)) for scale, n_in, n_out in zip(scales, sizes, sizes[1:])]


def random_normalization(size: int, variance_scale: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Keras Normalization statistics of inputs whose features vary by about ``variance_scale``."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(0, 0.1 * np.sqrt(variance_scale), size).astype(np.float32)
    return mean, (rng.uniform(0.5, 1.5, size) * variance_scale).astype(np.float32)


def embeddings(rows: int, size: int, seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (rows, size)).astype(np.float32)


def head_tensors(layers, mean=None, variance=None) -> dict[str, np.ndarray]:
    tensors = {}
    for i, (weight, bias) in enumerate(layers):
        tensors[f"layers.{i}.weight"], tensors[f"layers.{i}.bias"] = weight, bias
    if mean is not None:
        tensors["normalize.mean"], tensors["normalize.variance"] = mean, variance
    return tensors


def write_head(path: pathlib.Path, tensors: dict[str, np.ndarray], **metadata: str) -> str:
    from safetensors.numpy import save_file

    save_file(tensors, str(path), metadata={"kind": "nsfw", "embedding": "ViT-L-14", "l2_normalize": "true",
                                            **metadata})
    return str(path)


def torch_reference(x: np.ndarray, layers, mean=None, variance=None, *, l2: bool, index: int | None = None
                    ) -> np.ndarray:
    """The same MLP written independently with torch modules; Keras' Normalization is
    (x - mean) / max(sqrt(variance), 1e-7)."""
    modules: list[torch.nn.Module] = []
    for weight, bias in layers:
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
        linear.weight.data, linear.bias.data = torch.from_numpy(weight), torch.from_numpy(bias)
        modules += [linear, torch.nn.ReLU()]
    modules[-1] = torch.nn.Sigmoid() if index is None else torch.nn.Softmax(dim=1)
    t = torch.from_numpy(x)
    if l2:
        t = torch.nn.functional.normalize(t, dim=1)
    if mean is not None:
        t = (t - torch.from_numpy(mean)) / torch.from_numpy(variance).sqrt().clamp(min=1e-7)
    with torch.no_grad():
        out = torch.nn.Sequential(*modules)(t)
    return (out[:, 0] if index is None else out[:, index]).numpy()


@pytest.mark.parametrize("normalized", [False, True], ids=["mlp", "with-normalization"])
@pytest.mark.parametrize("l2", [True, False], ids=["l2", "raw"])
def test_head_scores_match_torch(tmp_path, normalized, l2):
    unit_length = 1 / np.sqrt(768)  # a feature of a unit-length embedding
    layers = random_layers(LAION_L14_SIZES, input_scale=unit_length if l2 and not normalized else 1.0)
    mean, variance = random_normalization(768, unit_length**2 if l2 else 1.0) if normalized else (None, None)
    path = write_head(tmp_path / "nsfw.safetensors", head_tensors(layers, mean, variance),
                      l2_normalize="true" if l2 else "false")
    head = load_head(path)
    x = embeddings(64, 768)
    scores = head.scores(x)
    expected = torch_reference(x, layers, mean, variance, l2=l2)
    assert (head.input_size, head.kind, head.embedding) == (768, "nsfw", "ViT-L-14")
    assert scores.dtype == np.float32 and scores.shape == (64,)
    assert scores.std() > 0.05, "scores saturated: the comparison would say little"
    assert np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_allclose(scores, expected, atol=1e-6, rtol=0)


def test_softmax_head_scores_the_indexed_class(tmp_path):
    layers = random_layers([512, 32, 3], seed=5)
    path = write_head(tmp_path / "wm.safetensors", head_tensors(layers), kind="watermark", embedding="ViT-B-32",
                      index="2")
    x = embeddings(16, 512)
    scores = load_head(path).scores(x)
    np.testing.assert_allclose(scores, torch_reference(x, layers, l2=True, index=2), atol=1e-6, rtol=0)


def test_normalization_floors_the_standard_deviation_like_keras(tmp_path):
    """Keras divides by max(sqrt(variance), 1e-7): a constant feature (variance 0) or a tinier
    variance is divided by 1e-7, not by 0 or by its own square root."""
    layers = [(np.ones((1, 3), np.float32), np.zeros(1, np.float32))]
    mean = np.zeros(3, np.float32)
    variance = np.array([0.0, 1e-16, 4.0], np.float32)
    head = load_head(write_head(tmp_path / "h.safetensors", head_tensors(layers, mean, variance),
                                l2_normalize="false"))
    x = np.array([[1e-7, 0, 0], [0, -1e-7, 0], [0, 0, 2.0]], np.float32)
    np.testing.assert_allclose(head.scores(x), 1 / (1 + np.exp([-1.0, 1.0, -1.0])), atol=1e-6, rtol=0)
    np.testing.assert_allclose(head.scores(x), torch_reference(x, layers, mean, variance, l2=False), atol=1e-6, rtol=0)


def test_extreme_logits_stay_in_range_without_warnings(tmp_path):
    layers = random_layers([8, 1])
    layers[0][0][:] = 1e4
    head = load_head(write_head(tmp_path / "h.safetensors", head_tensors(layers), l2_normalize="false"))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        scores = head.scores(np.array([[1.0] * 8, [-1.0] * 8], dtype=np.float32))
    assert scores.tolist() == [1.0, 0.0]


def torch_pickle(path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    torch.save({"layers.0.weight": Payload(marker)}, path)
    return path


def raw_pickle(path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    path.write_bytes(pickle.dumps({"layers.0.weight": Payload(marker)}, protocol=2))
    return path


def test_crafted_pickles_do_run_code_when_unpickled(tmp_path):
    """The control: the files below would create the marker if anything unpickled them."""
    marker = tmp_path / "ran"
    torch.load(torch_pickle(tmp_path / "a.pt", marker), weights_only=False)
    assert marker.exists()
    marker.unlink()
    pickle.loads(raw_pickle(tmp_path / "b.pkl", marker).read_bytes())
    assert marker.exists()


@pytest.mark.parametrize(("craft", "name", "said"), [
    (torch_pickle, "head.safetensors", "zip archive"),
    (torch_pickle, "head.pt", ".safetensors file"),
    (torch_pickle, "pytorch_model.bin", ".safetensors file"),
    (raw_pickle, "head.safetensors", "a pickle"),
    (raw_pickle, "head.pkl", ".safetensors file"),
])
def test_pickles_are_refused_unread(tmp_path, craft, name, said):
    marker = tmp_path / "ran"
    path = craft(tmp_path / name, marker)
    with pytest.raises(SafetyHeadError, match="convert") as err:
        load_head(str(path))
    assert said in str(err.value)
    assert not marker.exists()


def test_keras_h5_named_safetensors_is_refused(tmp_path):
    path = tmp_path / "nsfw.safetensors"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(SafetyHeadError, match=r"HDF5 file \(Keras \.h5\).*filters.safety_heads convert"):
        load_head(str(path))


def test_shapes_must_chain(tmp_path):
    layers = random_layers([16, 8, 1])
    layers[1] = (np.zeros((1, 7), np.float32), np.zeros(1, np.float32))
    with pytest.raises(SafetyHeadError, match="layer 1 takes 7 inputs but layer 0 gives 8 outputs"):
        load_head(write_head(tmp_path / "h.safetensors", head_tensors(layers)))


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.update({"layers.0.bias": np.zeros(9, np.float32)}), r"bias \(9,\) \(out,\)"),
    (lambda t: t.update({"layers.0.weight": np.zeros(8, np.float32)}), r"must be \(out, in\)"),
    (lambda t: t.pop("layers.1.bias"), "layers.1.bias missing"),
    (lambda t: t.update({"normalize.mean": np.zeros(15, np.float32), "normalize.variance": np.ones(15, np.float32)}),
     r"must be \(16,\)"),
    (lambda t: t.update({"normalize.mean": np.zeros(16, np.float32)}), "go together"),
    (lambda t: t.update({"layers.0.weight": np.zeros((8, 16), np.float64)}), "float64"),
    (lambda t: t.update({"layers.3.weight": np.zeros((1, 1), np.float32)}), "unknown tensors"),
    (lambda t: [t.pop(k) for k in list(t)] and t.update({"w": np.zeros(1, np.float32)}), "no layers.0.weight"),
])
def test_malformed_heads_are_refused(tmp_path, change, message):
    tensors = head_tensors(random_layers([16, 8, 1]))
    change(tensors)
    with pytest.raises(SafetyHeadError, match=message):
        load_head(write_head(tmp_path / "h.safetensors", tensors))


def test_bfloat16_head_is_refused_with_the_format_dtype(tmp_path):
    from safetensors.torch import save_file

    path = str(tmp_path / "h.safetensors")
    save_file({"layers.0.weight": torch.zeros(1, 4, dtype=torch.bfloat16), "layers.0.bias": torch.zeros(1)}, path,
              metadata={"kind": "nsfw", "embedding": "ViT-L-14", "l2_normalize": "true"})
    with pytest.raises(SafetyHeadError, match="layers.0.weight.*bfloat16.*stores float32"):
        load_head(path)


@pytest.mark.parametrize(("metadata", "message"), [
    ({"l2_normalize": "yes"}, "'true' or 'false'"),
    ({"index": "0"}, "for softmax heads"),
])
def test_bad_metadata_is_refused(tmp_path, metadata, message):
    with pytest.raises(SafetyHeadError, match=message):
        load_head(write_head(tmp_path / "h.safetensors", head_tensors(random_layers([16, 1])), **metadata))


def test_metadata_is_required(tmp_path):
    from safetensors.numpy import save_file

    path = str(tmp_path / "h.safetensors")
    save_file(head_tensors(random_layers([16, 1])), path, metadata={"kind": "nsfw", "embedding": "ViT-L-14"})
    with pytest.raises(SafetyHeadError, match="'l2_normalize' missing"):
        load_head(path)


@pytest.mark.parametrize("index", [None, "3", "x"])
def test_softmax_head_needs_a_valid_index(tmp_path, index):
    extra = {} if index is None else {"index": index}
    with pytest.raises(SafetyHeadError, match=r"3 outputs \(softmax\).*0\.\.2"):
        load_head(write_head(tmp_path / "h.safetensors", head_tensors(random_layers([16, 3])), **extra))


def test_embedding_dimension_mismatch_names_both_sizes(tmp_path):
    head = load_head(write_head(tmp_path / "l14.safetensors", head_tensors(random_layers(LAION_L14_SIZES))))
    with pytest.raises(SafetyHeadError) as err:
        head.scores(embeddings(4, 512))  # ViT-B/32 embeddings
    assert "512" in str(err.value) and "768" in str(err.value) and "ViT-L-14" in str(err.value)
    with pytest.raises(SafetyHeadError, match=r"\(batch, dim\)"):
        head.scores(embeddings(1, 768)[0])


# What Keras 2's model.save("x.h5") writes for LAION's ViT-L/14 autokeras model, as far as its
# published ports (NeMo Curator, video2dataset) show: an input, Normalization, three Dense+ReLU
# blocks, a Dropout, the output Dense and a sigmoid Activation (autokeras' classification head).
KERAS_LAYERS = ["input_1", "normalization", "dense", "re_lu", "dense_1", "re_lu_1", "dense_2", "re_lu_2", "dropout",
                "dense_3", "classification_head_1"]


def keras_weights(layers, mean, variance) -> dict[str, dict[str, np.ndarray]]:
    """Each Keras layer's weights, kernels (in, out) as Keras stores them."""
    weights: dict[str, dict[str, np.ndarray]] = {name: {} for name in KERAS_LAYERS}
    weights["normalization"] = {"mean": mean, "variance": variance, "count": np.array(50_000, np.int64)}
    for name, (weight, bias) in zip(["dense", "dense_1", "dense_2", "dense_3"], layers):
        weights[name] = {"kernel": np.ascontiguousarray(weight.T), "bias": bias}
    return weights


def write_keras_h5(path: pathlib.Path, weights: dict[str, dict[str, np.ndarray]]) -> str:
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["keras_version"], f.attrs["backend"] = b"2.8.0", b"tensorflow"
        f.attrs["model_config"] = json.dumps({"class_name": "Functional"}).encode()
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [name.encode() for name in weights]
        for layer, arrays in weights.items():
            g = group.create_group(layer)
            g.attrs["weight_names"] = [f"{layer}/{name}:0".encode() for name in arrays]
            for name, array in arrays.items():
                g.create_dataset(f"{layer}/{name}:0", data=array)
    return str(path)


def test_keras_layers_convert_to_the_reference_head(tmp_path):
    """The pure half of the conversion (h5py only reads the arrays): kernels transposed,
    weightless layers skipped, the Normalization kept."""
    layers = random_layers(LAION_L14_SIZES)
    mean, variance = random_normalization(768, 1 / 768)
    dense, got_mean, got_variance = head_from_keras_layers(list(keras_weights(layers, mean, variance).items()))
    assert [w.shape for w, _ in dense] == [w.shape for w, _ in layers]
    for (weight, bias), (want_weight, want_bias) in zip(dense, layers):
        np.testing.assert_array_equal(weight, want_weight)
        np.testing.assert_array_equal(bias, want_bias)
    np.testing.assert_array_equal(got_mean, mean)
    np.testing.assert_array_equal(got_variance, variance)


def test_keras_layers_the_format_cannot_hold_are_refused():
    batch_norm = {"gamma": np.ones(4), "beta": np.zeros(4), "moving_mean": np.zeros(4), "moving_variance": np.ones(4)}
    with pytest.raises(SafetyHeadError, match="batch_normalization"):
        head_from_keras_layers([("dense", {"kernel": np.ones((4, 4)), "bias": np.zeros(4)}),
                                ("batch_normalization", batch_norm)])


def test_keras_h5_converts_to_the_reference_scores(tmp_path, capsys):
    layers = random_layers(LAION_L14_SIZES)
    mean, variance = random_normalization(768, 1 / 768)
    h5 = write_keras_h5(tmp_path / "nsfw.h5", keras_weights(layers, mean, variance))
    out = tmp_path / "nsfw.safetensors"
    assert main(["convert", "--keras", h5, "--out", str(out), "--kind", "nsfw", "--embedding", "ViT-L-14"]) == 0
    assert "768, 64, 512, 256, 1" in capsys.readouterr().out
    head = load_head(str(out))
    x = embeddings(32, 768)
    assert (head.kind, head.embedding, head.l2_normalize) == ("nsfw", "ViT-L-14", True)
    np.testing.assert_allclose(head.scores(x), torch_reference(x, layers, mean, variance, l2=True), atol=1e-6, rtol=0)


def test_keras_save_weights_layout_converts_too(tmp_path):
    """model.save_weights("x.h5") puts the layers at the root, without model_weights."""
    import h5py

    layers = random_layers([512, 32, 32, 1], input_scale=1 / np.sqrt(512))  # the ViT-B/32 model's sizes
    weights = {"dense": {"kernel": layers[0][0].T.copy(), "bias": layers[0][1]}, "re_lu": {},
               "dense_1": {"kernel": layers[1][0].T.copy(), "bias": layers[1][1]}, "dropout": {},
               "dense_2": {"kernel": layers[2][0].T.copy(), "bias": layers[2][1]}}
    path = write_keras_h5(tmp_path / "b32.h5", weights)
    with h5py.File(path, "r+") as f:  # move the layers to the root, as save_weights writes them
        for name in weights:
            f.move(f"model_weights/{name}", name)
        f.attrs["layer_names"] = f["model_weights"].attrs["layer_names"]
        del f["model_weights"]
    head = convert_keras_h5(path, str(tmp_path / "b32.safetensors"), kind="nsfw", embedding="ViT-B-32")
    x = embeddings(8, 512)
    np.testing.assert_allclose(head.scores(x), torch_reference(x, layers, l2=True), atol=1e-6, rtol=0)


def test_conversion_without_h5py_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # `import h5py` fails as where it is not installed
    args = ["convert", "--keras", str(tmp_path / "x.h5"), "--out", str(tmp_path / "x.safetensors"), "--kind", "nsfw",
            "--embedding", "ViT-L-14"]
    assert main(args) == 2
    assert "pip install h5py" in capsys.readouterr().err


def tiny_vit_folder(folder: pathlib.Path) -> pathlib.Path:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=8, num_labels=2, id2label={0: "normal", 1: "nsfw"},
                       label2id={"normal": 0, "nsfw": 1})
    model = ViTForImageClassification(config).eval()
    with torch.no_grad():  # a classifier of unit-scale weights: images score apart, as a trained one's do
        model.classifier.weight.normal_(0, 1)
        model.classifier.bias.zero_()
    model.save_pretrained(folder)  # transformers 5 writes safetensors only
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def photos() -> list[Image.Image]:
    from skimage import data

    return [Image.fromarray(data.astronaut()).resize((48, 40)), Image.fromarray(data.coffee()).resize((32, 32))]


def test_image_classifier_scores_match_a_direct_forward(tmp_path):
    from transformers import ViTForImageClassification, ViTImageProcessor

    folder = tiny_vit_folder(tmp_path / "vit")
    images = photos()
    scores = ImageClassifierScorer(str(folder), "nsfw").scores(images)
    model = ViTForImageClassification.from_pretrained(folder).eval()
    inputs = ViTImageProcessor.from_pretrained(folder)(images=images, return_tensors="pt")
    with torch.no_grad():
        expected = model(**inputs).logits.softmax(dim=-1)[:, 1].numpy()
    assert scores.dtype == np.float32 and scores.shape == (2,)
    assert abs(scores[0] - scores[1]) > 0.3, "both images scored alike: the comparison would say little"
    np.testing.assert_allclose(scores, expected, atol=1e-5, rtol=0)


def test_image_classifier_unknown_label_lists_the_labels(tmp_path):
    folder = tiny_vit_folder(tmp_path / "vit")
    with pytest.raises(SafetyHeadError, match=r"'watermark'.*\['normal', 'nsfw'\]"):
        ImageClassifierScorer(str(folder), "watermark")


def test_image_classifier_with_pickled_weights_is_refused(tmp_path):
    folder = tiny_vit_folder(tmp_path / "vit")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "ran"
    torch_pickle(folder / "pytorch_model.bin", marker)
    with pytest.raises(SafetyHeadError, match="no .safetensors weights"):
        ImageClassifierScorer(str(folder), "nsfw")
    assert not marker.exists()
