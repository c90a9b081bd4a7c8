"""No entry point of avzsl executes a pickle: each is fed a real payload that would create a marker directory.

Every test first checks (``assert_payload_is_live``) that plain ``pickle`` does run the payload, then that the
avzsl entry point refuses the file with an error naming it, and that the marker never appears.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from avzsl.pipeline.core.safe_pickle import (
    ForbiddenPickleError,
    load_npy,
    load_text_embedding_dict,
    restricted_load_file,
)
from tests.pickle_payloads import EvalMarker, MakeMarker, assert_payload_is_live
from tests.test_avca import make_avca


@pytest.fixture()
def marker(tmp_path: Path) -> Path:
    assert_payload_is_live(tmp_path, MakeMarker)
    assert_payload_is_live(tmp_path, EvalMarker)
    return tmp_path / "PWNED"


def _npy_with(path: Path, value: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:  # np.save of a dict, as the released embedding files are written
        np.save(f, {"Archery": np.ones(4, np.float32), "Diving": value}, allow_pickle=True)
    return path


@pytest.mark.parametrize("factory", [MakeMarker, EvalMarker])
def test_text_dict_payload_refused(tmp_path, marker, factory):
    path = _npy_with(tmp_path / "word_embeddings_x_normed.npy", factory(marker))
    with pytest.raises(ForbiddenPickleError, match=str(path)) as info:
        load_text_embedding_dict(path)
    forbidden = "posix.mkdir" if factory is MakeMarker else "builtins.eval"
    assert forbidden in str(info.value)
    assert not marker.exists()


def test_released_layout_still_loads(tmp_path):
    """What the allow-list admits: np.save of a dict of float arrays (numpy 2 writes numpy._core names)."""
    text = {"a b": np.arange(3, dtype=np.float32), "c": np.ones(3, np.float64)}
    np.save(tmp_path / "t.npy", text)
    out = load_text_embedding_dict(tmp_path / "t.npy")
    assert list(out) == ["a b", "c"] and all(v.dtype == np.float32 for v in out.values())
    np.testing.assert_array_equal(out["a b"], text["a b"])
    # numpy 1.x's np.save wrote protocol 3 with numpy.core.multiarray._reconstruct (the released files do).
    payload = pickle.dumps(np.array(text, dtype=object), protocol=3)
    assert b"numpy._core.multiarray\n_reconstruct" in payload  # GLOBAL opcode: newline-terminated, no framing
    with (tmp_path / "old.npy").open("wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        f.write(payload.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    assert list(load_text_embedding_dict(tmp_path / "old.npy")) == ["a b", "c"]
    np.save(tmp_path / "plain.npy", np.eye(2))  # non-object arrays take the allow_pickle=False path
    np.testing.assert_array_equal(load_npy(tmp_path / "plain.npy"), np.eye(2))


@pytest.mark.parametrize("bad, reason", [
    ({"a": np.array(["x", "y"])}, "numeric vector"),
    ({1: np.ones(3)}, "keys must be class phrases"),
    ({"a": np.ones(3), "b": np.ones(4)}, "differ in length"),
    (["not", "a", "dict"], "expected a non-empty dict"),
])
def test_unexpected_content_named(tmp_path, bad, reason):
    path = tmp_path / "t.npy"
    np.save(path, np.array(bad, dtype=object) if isinstance(bad, list) else bad, allow_pickle=True)
    with pytest.raises(ForbiddenPickleError, match=reason) as info:
        load_text_embedding_dict(path)
    assert str(path) in str(info.value)


def test_truncated_pickle_named(tmp_path):
    path = _npy_with(tmp_path / "t.npy", np.zeros(4, np.float32))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ForbiddenPickleError, match=f"{path}: not a readable pickle"):
        load_text_embedding_dict(path)


def test_generic_restricted_load_refuses_payload(tmp_path, marker):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"features": [np.ones(2)], "evil": MakeMarker(marker)}, protocol=5))
    with pytest.raises(ForbiddenPickleError, match="posix.mkdir"):
        restricted_load_file(path)
    assert not marker.exists()


def test_avzsl_import_avca_refuses_payload(tmp_path, marker, caplog):
    from avzsl.pipeline.cli.import_features import main as import_main

    root = tmp_path / "TINY"
    make_avca(root)
    text = root / "features/main_features/text/word_embeddings_tiny_normed.npy"
    text.unlink()
    _npy_with(text, MakeMarker(marker))
    with caplog.at_level(logging.ERROR):
        assert import_main(["avca", "--root", str(root), "--out", str(tmp_path / "cache")]) == 2
    assert not marker.exists()
    assert str(text) in caplog.text and "posix.mkdir" in caplog.text
    assert not (tmp_path / "cache" / "cache.json").exists()


def test_word_vector_pickle_refused(tmp_path, marker):
    """gensim's native save() format is a pickle; avzsl refuses it instead of KeyedVectors.load()."""
    from avzsl.extractors.text.class_names import ClassNameEmbedder

    path = tmp_path / "vectors.kv"
    path.write_bytes(pickle.dumps(MakeMarker(marker), protocol=4))
    with pytest.raises(ValueError, match=f"{path}: is a Python pickle"):
        ClassNameEmbedder(path)
    assert not marker.exists()


def test_training_checkpoint_payload_refused(tmp_path, marker):
    from avzsl.pipeline.run.checkpoint import CheckpointCorruptError, load_checkpoint

    path = tmp_path / "model.pt"
    torch.save({"state_dict": {}, "evil": MakeMarker(marker)}, path)
    with pytest.raises(CheckpointCorruptError, match=str(path)):
        load_checkpoint(path)
    assert not marker.exists()


def test_selavi_checkpoint_payload_refused(tmp_path, marker):
    # _read_state_dict is the one place load_selavi reads the file (load_selavi first builds both encoders, ~10 s
    # on 2 cores, which this test does not need).
    from avzsl.extractors.encoders.selavi import _read_state_dict
    from avzsl.extractors.encoders.weights import CheckpointError

    path = tmp_path / "selavi_vgg_sound.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "evil": MakeMarker(marker)}, path)
    with pytest.raises(CheckpointError, match=str(path)):
        _read_state_dict(path)
    assert not marker.exists()


def test_convert_tool_refuses_payload(tmp_path, marker):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "convert_text_embeddings", Path(__file__).parents[1] / "scripts/convert_text_embeddings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    src = tmp_path / "src"
    _npy_with(src / "word_embeddings_ucf_normed.npy", MakeMarker(marker))
    with pytest.raises(ForbiddenPickleError, match="posix.mkdir"):
        module.convert(src, tmp_path / "out")
    assert not marker.exists()
