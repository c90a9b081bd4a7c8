"""avzsl-predict --zero-shot: arbitrary class names ranked for a raw video by the frozen CLIP/CLAP towers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avzsl.pipeline.cli import predict as cli_predict
from tests.foundation_fixtures import tiny_clap_checkpoint, tiny_clip_checkpoint
from tests.media import write_av, write_text_as_mp4


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("zsp")
    write_av(root / "clip.mp4", duration_s=2.2, size=(64, 48), color=(200, 40, 40), freq_hz=500)
    write_text_as_mp4(root / "notes.mp4")
    return {"root": root, "clip": tiny_clip_checkpoint(root / "clip"), "clap": tiny_clap_checkpoint(root / "clap")}


def test_ranks_arbitrary_names_with_the_fused_cosine(world: dict[str, Path], capsys) -> None:
    from avzsl.extractors.encoders.registry import build_encoder
    from avzsl.extractors.text.text_towers import TextTowerEmbedder
    from avzsl.pipeline.predict.ranking import encode_videos

    video, names = str(world["root"] / "clip.mp4"), ["dog barking", "playing piano", "a red siren", "rain"]
    argv = ["--zero-shot", "--clip-checkpoint", str(world["clip"]), "--clap-checkpoint", str(world["clap"]),
            "--classes", ",".join(names), "--top", "4", "--json", "--workers", "0", "--audio-weight", "0.3", video]
    capsys.readouterr()
    assert cli_predict.main(argv) == 0
    ranked = json.loads(capsys.readouterr().out)[video]["predictions"]
    assert sorted(r["class"] for r in ranked) == sorted(names)
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True) and not any(r["seen"] for r in ranked)
    assert all(r["p"] is None for r in ranked)  # a cosine, not a probability: the output says so
    assert json_doc_score_is(capsys, argv, video).startswith("0.7 cos(visual, CLIP text) + 0.3 cos(audio, CLAP")
    # The same numbers from the library pieces: towers, extraction code path, fused cosine.
    encoders = build_encoder("clip_clap", {"clip": world["clip"], "clap": world["clap"]})
    encoded = encode_videos([video], encoders, "pyav", "clean", workers=0)[video]
    text = TextTowerEmbedder(encoders).embed(names).embeddings
    v, a = encoded.visual_mean, encoded.audio_mean
    expected = 0.7 * (text[:, :16] @ (v / np.linalg.norm(v))) + 0.3 * (text[:, 16:] @ (a / np.linalg.norm(a)))
    got = {r["class"]: r["score"] for r in ranked}
    np.testing.assert_allclose([got[n] for n in names], expected, rtol=1e-4, atol=1e-5)


def json_doc_score_is(capsys, argv: list[str], video: str) -> str:
    assert cli_predict.main(argv) == 0
    return json.loads(capsys.readouterr().out)[video]["score_is"]


def test_unreadable_video_and_missing_weights(world: dict[str, Path], capsys) -> None:
    base = ["--zero-shot", "--clip-checkpoint", str(world["clip"]), "--clap-checkpoint", str(world["clap"]),
            "--classes", "a,b", "--workers", "0"]
    capsys.readouterr()
    assert cli_predict.main([*base, str(world["root"] / "notes.mp4")]) == 1
    assert "ERROR unreadable" in capsys.readouterr().out
    assert cli_predict.main(["--zero-shot", "--encoder", "clip_clap", "--classes", "a,b",
                             str(world["root"] / "clip.mp4")]) == 2
    assert "needs --clip-checkpoint and --clap-checkpoint" in capsys.readouterr().err
    assert cli_predict.main([*base, "--text-templates", "kinetics", str(world["root"] / "clip.mp4")]) == 2
    assert "unknown template set" in capsys.readouterr().err
