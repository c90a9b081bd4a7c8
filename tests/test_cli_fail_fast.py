"""Fail fast, fail clearly: arguments, paths and weights are checked before anything is probed, loaded or created,
in CLI wording; a refused command leaves no output folder behind."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.cli import predict as cli_predict
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.cli.errors import report_user_error
from avzsl.pipeline.cli.logs import discard_if_only_logs, missing_root, setup_logging
from avzsl.pipeline.cli.option_words import in_flag_words


@pytest.fixture
def nothing_heavy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Probing videos, loading word vectors or building encoders fails the test."""
    import avzsl.extractors.decode.probe as probe
    import avzsl.extractors.encoders.registry as registry
    import avzsl.extractors.text.class_names as word_vectors

    def forbidden(*args, **kwargs):
        raise AssertionError("heavy work started before the arguments were checked")

    monkeypatch.setattr(probe, "probe_many", forbidden)
    monkeypatch.setattr(registry, "build_encoder", forbidden)
    monkeypatch.setattr(word_vectors.ClassNameEmbedder, "__init__", forbidden)


def _videos(tmp_path: Path) -> Path:
    videos = tmp_path / "videos" / "piano"
    videos.mkdir(parents=True)
    (videos / "a.mp4").write_bytes(b"")
    return tmp_path / "videos"


def test_extract_without_weights_refused_first_in_cli_words(tmp_path: Path, nothing_heavy, caplog) -> None:
    out = tmp_path / "new" / "cache"
    with caplog.at_level(logging.ERROR):
        assert cli_extract.main(["--videos", str(_videos(tmp_path)), "--out", str(out)]) == 2
    assert "--selavi-checkpoint" in caplog.text and "--random-weights" in caplog.text
    assert "random_weights=True" not in caplog.text
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--selavi-checkpoint", "missing.pth"], "missing.pth: --selavi-checkpoint file not found"),
        (["--random-weights", "--word-vectors", "nowhere.bin"], "nowhere.bin: --word-vectors file not found"),
        (["--random-weights", "--class-phrases", "nowhere.csv"], "nowhere.csv: --class-phrases file not found"),
        (["--random-weights", "--batch-size", "0"], "--batch-size must be >= 1"),
        (["--random-weights", "--clip-checkpoint", "c.bin"],
         "--clip-checkpoint is not for selavi_vggsound, which takes --selavi-checkpoint"),
        (["--encoder", "clip_clap", "--selavi-checkpoint", "s.pth"],
         "--selavi-checkpoint is not for clip_clap, which takes --clip-checkpoint and --clap-checkpoint"),
        (["--encoder", "clip_clap", "--clip-checkpoint", "c.bin"], "clip_clap needs --clap-checkpoint (files you"),
        (["--encoder", "effnet_lite0_aisfx", "--clip-checkpoint", "c.bin"],
         "effnet_lite0_aisfx takes its weights from installed packages; drop --clip-checkpoint"),
    ],
)
def test_extract_bad_paths_refused_first(tmp_path: Path, nothing_heavy, caplog, extra, expected) -> None:
    out = tmp_path / "cache"
    assert cli_extract.main(["--videos", str(_videos(tmp_path)), "--out", str(out), *extra]) == 2
    assert expected in caplog.text
    assert not out.exists()


def test_extract_missing_videos_folder(tmp_path: Path, nothing_heavy, caplog) -> None:
    out = tmp_path / "cache"
    assert cli_extract.main(["--videos", str(tmp_path / "none"), "--out", str(out), "--random-weights"]) == 2
    assert "--videos folder not found" in caplog.text and not out.exists()


def test_extract_oov_class_leaves_no_cache_folder(tmp_path: Path, caplog) -> None:
    # Passes the argument checks, then fails on the class name (GloVe knows no word of it): the cache folder and
    # its logs/rank-0.log, created for logging, are removed again; a folder that existed before is kept.
    videos = tmp_path / "videos" / "Qzxwvkjq"
    videos.mkdir(parents=True)
    (videos / "a.mp4").write_bytes(b"")
    out = tmp_path / "cache"
    args = ["--videos", str(tmp_path / "videos"), "--out", str(out), "--random-weights", "--no-progress"]
    assert cli_extract.main(args) == 2
    errors = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert "--oov skip" in errors and "--class-phrases FILE" in errors and "oov='skip'" not in errors
    assert not out.exists()
    out.mkdir()
    assert cli_extract.main(args) == 2
    assert out.is_dir()


def test_train_refusals_create_no_run_folder(tmp_path: Path, caplog) -> None:
    run = tmp_path / "runs" / "mine"
    assert cli_train.main(["--cache", str(tmp_path / "nope"), "--benchmark", "ucf", "--out", str(run)]) == 2
    assert "--cache folder not found" in caplog.text
    not_a_cache = tmp_path / "empty"
    not_a_cache.mkdir()
    # Gets past the argument checks, creates RUN/train.log, then the cache is refused: nothing is left behind.
    assert cli_train.main(["--cache", str(not_a_cache), "--benchmark", "ucf", "--out", str(run)]) == 2
    assert "cache.json" in caplog.text
    assert not (tmp_path / "runs").exists()


def test_predict_reports_missing_video_before_loading_the_run(tmp_path: Path, monkeypatch, capsys) -> None:
    import avzsl.pipeline.predict.predictor as predict

    def forbidden(*args, **kwargs):
        raise AssertionError("the run was loaded although no input exists")

    monkeypatch.setattr(predict.Predictor, "__init__", forbidden)
    args = ["--run", str(tmp_path), "--random-weights", "--classes", "a,b", str(tmp_path / "gone.mp4")]
    # A missing input is one error line of the batch (exit 1: nothing predicted), found before anything loads.
    assert cli_predict.main(args) == 1
    assert f"{tmp_path / 'gone.mp4'}: ERROR not_a_file: no such file or folder" in capsys.readouterr().out


def test_library_wording_becomes_cli_wording(caplog) -> None:
    from avzsl.extractors.encoders.weights import MissingWeightsError
    from avzsl.extractors.text.class_names import OOV_HINT, OOVError
    from avzsl.pipeline.predict.predictor import PredictError

    setup_logging()
    oov = OOVError(f"3 class name(s) ...; {OOV_HINT}:\n  'Qz': qz", {"Qz": ["qz"]}, OOV_HINT)
    report_user_error(in_flag_words(oov))
    assert "pass --class-phrases FILE (columns original,manual), or --oov skip to drop" in caplog.text
    wrapped = PredictError(f"candidate class names cannot be embedded: {oov}")
    wrapped.__cause__ = oov
    assert "or --oov skip to drop missing words:" in str(in_flag_words(wrapped))
    missing = MissingWeightsError("clip_clap needs weights for clip and clap ...", "clip_clap", ("clip", "clap"))
    assert str(in_flag_words(missing)) == (
        "clip_clap needs --clip-checkpoint and --clap-checkpoint (files you download, see docs/encoders.md); "
        "--random-weights builds seeded random towers for tests only"
    )
    other = ValueError("oov='skip'")
    assert in_flag_words(other) is other


def test_discard_keeps_folders_with_results(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    created = missing_root(out)
    assert created == tmp_path / "a"
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "rank-0.log").write_text("x")
    (out / "shard.h5").write_bytes(b"data")
    assert not discard_if_only_logs(created) and (out / "shard.h5").is_file()
    (out / "shard.h5").unlink()
    assert discard_if_only_logs(created) and not (tmp_path / "a").exists()
    assert missing_root(tmp_path) is None and not discard_if_only_logs(None)
