"""The project's small segmenter exported to TorchScript (and ONNX where the packages exist)
gives the labels of the torch model, and runs inline in ssr reconstruct."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ssr_ros.completion.weights import load_model
from ssr_ros.errors import ConfigError, InvalidInput
from ssr_ros.package_files import find_package_file
from ssr_ros.semantics.segmenter import Segmenter, SegmenterStageConfig, export_segmenter, load_class_map
from ssr_ros.taxonomy import ClassTaxonomy

H, W = 48, 64


@pytest.fixture(scope="module")
def model():
    path = find_package_file("models", "segmenter_small.pt")
    if path is None:
        pytest.skip("models/segmenter_small.pt is absent")
    return load_model(path, "cpu", expected_type="segmenter2d")


@pytest.fixture(scope="module")
def rgb():
    rng = np.random.default_rng(0)
    image = np.zeros((H, W, 3), np.uint8)
    image[: H // 2] = (200, 190, 180)  # a light wall above, a dark floor below, noise on top
    image[H // 2:] = (90, 70, 50)
    return np.clip(image + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)


def torch_labels(model, rgb) -> np.ndarray:
    probs = model.predict_probs(torch.from_numpy(rgb).float() / 255.0)
    return probs.argmax(-1).numpy()


def test_torchscript_export_gives_the_torch_models_labels(model, rgb, tmp_path):
    written = export_segmenter(model, tmp_path, H, W, formats=("torchscript",))
    segmenter = Segmenter(SegmenterStageConfig(type="torchscript", model=str(written["torchscript"]), device="cpu"),
                          ClassTaxonomy.load())
    probs = segmenter(rgb)
    assert probs.shape == (H, W, 21) and np.allclose(probs.sum(-1), 1.0, atol=1e-4)
    assert np.array_equal(probs.argmax(-1), torch_labels(model, rgb))
    # another image size is resized to the exported one and back
    bigger = np.repeat(np.repeat(rgb, 2, 0), 2, 1)
    assert segmenter(bigger).shape == (2 * H, 2 * W, 21)


def test_onnx_export_gives_the_torch_models_labels(model, rgb, tmp_path):
    pytest.importorskip("onnx", reason="the ONNX exporter needs the 'onnx' package")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    written = export_segmenter(model, tmp_path, H, W, formats=("onnx",))
    segmenter = Segmenter(SegmenterStageConfig(type="onnx", model=str(written["onnx"]), device="cpu"), ClassTaxonomy.load())
    assert np.array_equal(segmenter(rgb).argmax(-1), torch_labels(model, rgb))


def test_class_map_sums_model_classes_into_the_taxonomy(model, rgb, tmp_path):
    written = export_segmenter(model, tmp_path, H, W, formats=("torchscript",))
    mapping = tmp_path / "map.yaml"
    mapping.write_text("classes:\n" + "".join(f"  {i}: wall\n" for i in range(1, 21)))
    taxonomy = ClassTaxonomy.load()
    segmenter = Segmenter(SegmenterStageConfig(type="torchscript", model=str(written["torchscript"]), device="cpu",
                                               class_map=str(mapping)), taxonomy)
    probs = segmenter(rgb)
    assert np.all(probs.argmax(-1) == taxonomy.id_of("wall"))
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-4)
    with pytest.raises(ConfigError, match="outside"):
        mapping.write_text("classes:\n  99: wall\n")
        load_class_map(mapping, taxonomy, 21)


def test_packaged_class_maps_name_taxonomy_classes():
    taxonomy = ClassTaxonomy.load()
    for name, classes in (("nyu40", 41), ("ade20k150", 150), ("coco_panoptic133", 133)):
        path = find_package_file("config", f"class_maps/{name}_to_scannet20.yaml")
        assert path is not None, name
        lookup = load_class_map(path, taxonomy, classes)
        assert {"wall", "floor"} <= {taxonomy.names[i] for i in lookup}


def test_bad_segmenter_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="needs segmenter.model"):
        SegmenterStageConfig(type="torchscript").validate()
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a model")
    with pytest.raises(Exception, match="TorchScript"):
        Segmenter(SegmenterStageConfig(type="torchscript", model=str(bogus), device="cpu"), ClassTaxonomy.load())
