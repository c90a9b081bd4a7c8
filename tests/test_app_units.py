"""avzsl-app's pieces without a server: uploads recognised by content, the videos root, class lists, the CSV, hosts."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from avzsl.pipeline.app.browse import PathRefusedError, VideoRoot
from avzsl.pipeline.app.classlists import MAX_CLASSES, parse_class_names, phrases_for, ready_lists
from avzsl.pipeline.app.tables import CSV_COLUMNS, results_csv
from avzsl.pipeline.app.uploads import UploadRefusedError, display_name, save_upload, sniff_container, upload_folder
from avzsl.pipeline.cli.app import is_loopback
from tests.media import write_av


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    return {ext: write_av(root / f"c{ext}", duration_s=1.0, size=(32, 24)) for ext in (".mp4", ".mkv", ".avi")}


def test_real_containers_are_recognised_by_their_bytes(clips: dict[str, Path]) -> None:
    got = {ext: sniff_container(path.read_bytes()[:256]) for ext, path in clips.items()}
    assert got == {".mp4": ("MP4/QuickTime", ".mp4"), ".mkv": ("Matroska/WebM", ".mkv"), ".avi": ("AVI", ".avi")}


@pytest.mark.parametrize(("head", "said"), [
    (b"this is not a video\n" * 4, "text"),
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "a PNG image"),
    (b"%PDF-1.7\n" + bytes(40), "a PDF document"),
    (b"PK\x03\x04" + bytes(40), "a ZIP archive"),
    (bytes([0xC3, 0x28, 0xA0, 0xA1]) * 10, "data of no known video format"),
    (b"G" + b"x" * 300, "text"),  # one MPEG-TS sync byte is not enough
])
def test_other_content_is_refused_saying_what_it_looks_like(head: bytes, said: str) -> None:
    with pytest.raises(UploadRefusedError, match=f"not a video: its content is {said}"):
        sniff_container(head)
    with pytest.raises(UploadRefusedError, match="the file is empty"):
        sniff_container(b"")


def test_save_upload_checks_size_and_keeps_no_client_name(clips: dict[str, Path]) -> None:
    data = clips[".mkv"].read_bytes()
    with upload_folder() as folder:
        saved = save_upload(io.BytesIO(data), len(data), folder, 3, "../../evil.mp4", max_bytes=len(data))
        assert saved.path == folder / "3.mkv" and saved.path.read_bytes() == data and saved.container == "Matroska/WebM"
        with pytest.raises(UploadRefusedError, match=f"too large: {len(data):,} bytes"):
            save_upload(io.BytesIO(data), len(data), folder, 4, "x", max_bytes=len(data) - 1)
        with pytest.raises(UploadRefusedError, match="too large: over the limit"):  # size not declared
            save_upload(io.BytesIO(data), None, folder, 5, "x", max_bytes=len(data) - 1)
        kept = folder
    assert not kept.exists()  # the request's folder is deleted
    assert display_name("C:\\Users\\me\\clip.mp4", 0) == "clip.mp4"
    assert display_name("../../etc/passwd", 0) == "passwd" and display_name("", 2) == "upload-3"


def test_videos_root_refuses_every_way_out(tmp_path: Path, clips: dict[str, Path]) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "x.mp4").write_bytes(clips[".mp4"].read_bytes())
    (outside / "secret.mp4").write_bytes(b"secret")
    (root / "out.mp4").symlink_to(outside / "secret.mp4")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "in.mp4").symlink_to(root / "a" / "x.mp4")
    (root / "loop.mp4").symlink_to(root / "loop.mp4")
    (root / "notes.txt").write_text("private")
    (root / "notes.mp4").symlink_to(root / "notes.txt")
    videos = VideoRoot(root)
    assert videos.resolve("a/x.mp4") == (root / "a" / "x.mp4").resolve()
    assert videos.resolve("in.mp4") == (root / "a" / "x.mp4").resolve()
    refused = {
        "../outside/secret.mp4": "absolute paths and .. are refused",
        "a/../../outside/secret.mp4": "absolute paths and .. are refused",
        str(outside / "secret.mp4"): "absolute paths and .. are refused",
        "out.mp4": "a symlink out of it",
        "linked/secret.mp4": "a symlink out of it",
        "a\\..\\..\\outside\\secret.mp4": "not a path relative",
        "a/x.mp4\x00.txt": "not a path relative",
        "": "not a path relative",
        "loop.mp4": "not found",
        "missing.mp4": "not found",
        "a": "not a file",
        "notes.txt": "not a video file name",
        "notes.mp4": "not a video file name",  # a video name leading to another file
    }
    for path, why in refused.items():
        with pytest.raises(PathRefusedError, match=why):
            videos.resolve(path)
    assert videos.videos() == ["a/x.mp4", "in.mp4"]  # no symlink out, no symlinked folder, no loop
    with pytest.raises(FileNotFoundError):
        VideoRoot(tmp_path / "nowhere")


def test_class_names_typed_or_ready() -> None:
    assert parse_class_names("playing piano, dog barking,violin,, Dog  Barking,  rain ") == [
        "playing piano", "dog barking", "violin", "rain"]
    assert parse_class_names("playing violin, fiddle\n\ndog barking\n") == ["playing violin, fiddle", "dog barking"]
    for bad, why in ((" , \n ", "at least one class name"), (",".join(f"c{i}" for i in range(MAX_CLASSES + 1)),
                                                                  "at most"), ("x" * 300, "over 200 characters")):
        with pytest.raises(ValueError, match=why):
            parse_class_names(bad)
    lists = ready_lists()
    assert lists["demo: test-unseen classes"] == ["goat", "caribou", "bison", "goose", "fox", "tiger", "cymbal"]
    assert len(lists["demo: all 19 classes"]) == 19
    assert len(lists["UCF101 (101 classes)"]) == 101 and len(lists["ActivityNet (200 classes)"]) == 200
    assert len(lists["VGGSound (309 classes)"]) == 309
    assert phrases_for(["Applyingsunscreen", "violin", "playing violin, fiddle"]) == {
        "Applyingsunscreen": "Applying sunscreen", "playing violin, fiddle": "playing violin"}


def test_batch_csv_has_a_row_per_ranked_class_and_error() -> None:
    document = {
        "a.mp4": {"predictions": [{"class": "dog", "score": -0.1, "p": 0.9, "seen": True, "visual": 0.8, "audio": 0.95},
                                  {"class": "cat", "score": -2.3, "p": 0.1, "seen": False, "visual": None,
                                   "audio": None}], "windows": 3, "branches": "softmax", "window_support": []},
        "b,\"odd\".mp4": {"error": "not a video: text", "status": "refused"},
    }
    rows = list(csv.reader(io.StringIO(results_csv(document))))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[1] == ["a.mp4", "1", "dog", "-0.1", "0.9", "seen", "0.8", "0.95", "3", ""]
    assert rows[2][5:8] == ["unseen", "", ""]
    assert rows[3] == ["b,\"odd\".mp4", "", "", "", "", "", "", "", "", "not a video: text"]


def test_loopback_hosts() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.2", "example.org"))


def test_app_cli_refusals_exit_2(tmp_path: Path, capsys) -> None:
    from avzsl.pipeline.cli import app as cli_app

    with pytest.raises(SystemExit) as exited:
        cli_app.main([])
    assert exited.value.code == 2 and "give --run RUN" in capsys.readouterr().err
    assert cli_app.main(["--run", str(tmp_path / "none"), "--videos-root", str(tmp_path / "nowhere")]) == 2
    assert "--videos-root is not a folder" in capsys.readouterr().err
    assert cli_app.main(["--run", str(tmp_path / "none"), "--port", "9"]) == 2  # fails loading, never binds
    assert os.fspath(tmp_path / "none") in capsys.readouterr().err
