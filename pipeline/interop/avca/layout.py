"""Shared pieces of the AVCA layout import/export (avgzsl_conventions.md section 2).

Layout (``ROOT`` = one dataset folder of ``avgzsl_benchmark_datasets/``, e.g. ``.../UCF``)::

    ROOT/class-split/all_class.txt, <ds>_w2v_class_names.csv, <split>/stage_*.{txt,csv}
    ROOT/features/<features>/{audio,video}/<stage_split>/<ClassName>.h5
        data        (n_videos_of_class, D) float32
        video_urls  (n_videos_of_class,) ASCII bytes (fixed S80 or variable length), row-aligned between the
                    audio and the video file of a class
    ROOT/features/<features>/text/word_embeddings_<ds>_normed.npy
        np.save of a Python dict {manual phrase: (300,) float32}: a PICKLE, read with the restricted unpickler of
        ``pipeline/core/safe_pickle.py`` (no code from the file runs).

This module: constants, errors, per-class file reading, class-embedding mapping and the locked, resumable output
folder handling used by ``avca_import.py`` and ``avca_export.py``. Details: ``docs/avca_interop.md``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avzsl.pipeline.core.atomic import atomic_write_text, remove_temporaries
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.core.lock import LOCK_NAME, DirectoryLock
from avzsl.pipeline.core.safe_pickle import load_text_embedding_dict
from avzsl.pipeline.data.splits import SplitError, load_splits, read_class_list

_logger = logging.getLogger(__name__)

EMBEDDING_ORDERS = ("by_name", "reference")
MODALITIES = {"audio": "audio", "video": "visual"}  # AVCA folder -> avzsl feature name
# File names the reference loader (ExplainableML/AVCA-GZSL, src/dataset.py) opens, per dataset.
REFERENCE_TEXT_FILES = {
    "ucf": "word_embeddings_ucf_normed.npy",
    "activitynet": "word_embeddings_activity_normed.npy",
    "vggsound": "word_embeddings_vggsound_normed.npy",
}
SPLITS_SUBDIR = Path("splits") / "avca"
# Present in an output folder while an import/export writes it; a rerun that finds it (the writer died) removes the
# partial output and starts again instead of refusing a non-empty folder.
IMPORT_MARKER = ".avzsl.import.incomplete"
EXPORT_MARKER = ".avzsl.export.incomplete"
S80 = 80  # width of the reference's fixed-length video_urls (AVCA README: dtype="S80")


class AvcaError(UserError):
    """The AVCA folder (or the cache to export) is malformed; the message names the file(s)."""



DUPLICATE_ATOL = 1e-6  # a video found in two stage splits must carry the same features (up to float noise)


@dataclass
class ImportedVideo:
    """One video's features read from a released layout: audio (D_A,), visual (D_V,)."""

    class_name: str
    audio: np.ndarray
    visual: np.ndarray
    source: str  # "audio file | video file", for error messages


@dataclass
class VideoCollector:
    """Gathers the videos of per-class audio/video files over all stage splits (AVCA and ClipClap imports).

    A video may appear in several stage splits (stage-1 files reappear in stage 2): it is kept once, in first-seen
    order, and must carry the same class and features everywhere.
    """

    videos: dict[str, ImportedVideo] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    repeated: set[str] = field(default_factory=set)

    def add_class_files(self, class_name: str, audio_file: Path, video_file: Path,
                        audio: np.ndarray, audio_names: list[str], visual: np.ndarray, visual_names: list[str],
                        rows: list[tuple[str, str]], error: type[UserError]) -> None:
        """Add one class's files (audio (N, D_A), visual (N, D_V), N names each); append (video, class) to rows.

        Raises ``error`` naming the files when the two are not row-aligned or a repeated video disagrees.
        """
        if len(audio_names) != len(visual_names):
            raise error(f"{audio_file} and {video_file} are not row-aligned: "
                        f"{len(audio_names)} vs {len(visual_names)} videos")
        if audio_names != visual_names:
            i = next(i for i, (a, v) in enumerate(zip(audio_names, visual_names, strict=True)) if a != v)
            raise error(f"{audio_file} and {video_file} are not row-aligned: row {i} is "
                        f"{audio_names[i]!r} vs {visual_names[i]!r}")
        source = f"{audio_file} | {video_file}"
        for i, vid in enumerate(audio_names):
            rows.append((vid, class_name))
            seen = self.videos.get(vid)
            if seen is None:
                self.videos[vid] = ImportedVideo(class_name, audio[i], visual[i], source)
                self.order.append(vid)
                continue
            self.repeated.add(vid)
            if seen.class_name.lower() != class_name.lower():
                raise error(f"video {vid!r} is class {seen.class_name!r} in {seen.source} but "
                            f"{class_name!r} in {source}")
            for name, new, old in (("audio", audio[i], seen.audio), ("video", visual[i], seen.visual)):
                if new.shape != old.shape or not np.allclose(new, old, rtol=0, atol=DUPLICATE_ATOL):
                    diff = float(np.max(np.abs(new - old))) if new.shape == old.shape else float("nan")
                    raise error(f"video {vid!r} has different {name} features in {seen.source} and "
                                f"{source} (max abs difference {diff:.3g})")


def _normalise(name: str) -> str:
    """Name key for matching without a name map: lower-case, spaces and underscores removed."""
    return name.lower().replace(" ", "").replace("_", "")


def match_text_keys(class_names: Sequence[str], text: Mapping[str, Any],
                    name_map: Mapping[str, str] | None) -> tuple[dict[str, str], list[str]]:
    """The key of ``text`` for each class: its phrase from ``name_map`` (keyed by lower-case class name) when
    ``text`` holds it, else the one key with the same normalised name.

    Returns:
        ``({class name: key}, [classes with no key])``.
    """
    by_norm: dict[str, list[str]] = {}
    for key in text:
        by_norm.setdefault(_normalise(key), []).append(key)
    matched: dict[str, str] = {}
    unmatched = []
    for name in class_names:
        key = name_map.get(name.lower()) if name_map is not None else None
        if key is None or key not in text:
            candidates = by_norm.get(_normalise(key or name), [])
            key = candidates[0] if len(candidates) == 1 else None
        if key is None:
            unmatched.append(name)
        else:
            matched[name] = key
    return matched, unmatched


def checked_path(path: Path, root: Path, allow_outside: bool) -> Path:
    """``path`` resolved (symlinks followed); refuses a result outside ``root`` unless ``allow_outside``."""
    resolved = Path(path).resolve()
    if not allow_outside and not resolved.is_relative_to(root):
        raise AvcaError(f"{path}: resolves to {resolved}, outside the import root {root} (refused; "
                        "allow_outside=True / --allow-outside accepts it)")
    return resolved


def _decode(value: Any) -> str:
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8")
    return str(value)


def read_class_file(path: Path) -> tuple[np.ndarray, list[str]]:
    """Read one AVCA per-class file.

    Returns:
        ``data`` ``(n, D)`` float32 and the ``n`` video names of ``video_urls``.
    """
    try:
        with h5py.File(path, "r") as f:
            if "data" not in f or "video_urls" not in f:
                raise AvcaError(f"{path}: needs datasets 'data' and 'video_urls', has {sorted(f.keys())}")
            data = np.asarray(f["data"][...], dtype=np.float32)
            urls = [_decode(u) for u in f["video_urls"][...]]
    except OSError as exc:
        raise AvcaError(f"{path}: not a readable HDF5 file ({exc})") from exc
    if data.ndim != 2 and not (data.ndim == 1 and data.shape[0] == 0):
        raise AvcaError(f"{path}: 'data' must be (n_videos, D), is {data.shape}")
    if data.shape[0] != len(urls):
        raise AvcaError(f"{path}: {data.shape[0]} feature rows but {len(urls)} video_urls")
    return data.reshape(len(urls), -1) if data.ndim == 1 else data, urls


def load_text_dict(path: Path) -> dict[str, np.ndarray]:
    """Load a released embedding dict (``np.save`` of ``{phrase: (D,) float32}``) WITHOUT executing pickled code.

    The file is a pickle; it is read by :func:`avzsl.pipeline.core.safe_pickle.load_text_embedding_dict`, which admits
    only the numpy globals that array pickles need and refuses any other with an error naming the file and the
    global.
    """
    try:
        return load_text_embedding_dict(path)
    except OSError as exc:
        raise AvcaError(f"{path}: cannot read the embedding dict ({exc})") from exc


def _name_map(dataset: str | None, root: Path | None) -> tuple[dict[str, str] | None, str]:
    """``original class name (lower) -> dict key`` and where it came from; ``None`` = match normalised names."""
    if dataset is not None:
        from avzsl.data_manifests import class_phrases

        return {k.lower(): v for k, v in class_phrases(dataset).items()}, f"avzsl.data_manifests ({dataset})"
    if root is not None and (root / "class-split").is_dir():
        found = sorted((root / "class-split").glob("*_w2v_class_names.csv"))
        if len(found) == 1:
            with found[0].open(newline="", encoding="utf-8") as f:
                rows = {r["original"].strip().lower(): r["manual"].strip() for r in csv.DictReader(f)}
            return rows, str(found[0])
    return None, "normalised names"


def _all_class_names(dataset: str | None, root: Path | None) -> list[str]:
    if dataset is not None:
        from avzsl.data_manifests import all_classes

        return all_classes(dataset)
    if root is not None and (root / "class-split" / "all_class.txt").is_file():
        return list(read_class_list(root / "class-split" / "all_class.txt"))
    raise AvcaError("the reference embedding order needs the dataset's all_class.txt: give the dataset "
                    "(--dataset) or keep class-split/all_class.txt in the AVCA folder")


def map_class_embeddings(
    class_names: Sequence[str],
    text: Mapping[str, np.ndarray],
    dataset: str | None = None,
    order: str = "by_name",
    root: Path | None = None,
    all_class_names: Sequence[str] | None = None,
) -> tuple[list[str], np.ndarray, list[str]]:
    """Choose the embedding of each class.

    ``by_name`` (correct): the class name is mapped to its phrase through the dataset's ``w2v_class_names`` map
    (``dataset`` given, or ``ROOT/class-split/*_w2v_class_names.csv``), else matched to a dict key with the same
    normalised name (lower-case, spaces/underscores removed).

    ``reference``: what ``ExplainableML/AVCA-GZSL, src/dataset.py`` does. It builds the text table as
    ``list(dict(sorted(text.items())).values())`` (sorted by phrase) and indexes it with the class id
    ``sorted(all_class).index(name)`` (sorted by ORIGINAL name), so class id ``k`` receives the ``k``-th phrase in
    phrase order, which is another class's wherever the two sort orders differ.

    Args:
        class_names: classes to look up (any case).
        text: ``{phrase: (D,) float32}``.
        dataset: benchmark key, for the name map and the class list.
        order: ``by_name`` or ``reference``.
        root: AVCA dataset folder (fallback source of the name map and ``all_class.txt``).
        all_class_names: class list defining the reference class ids (default: dataset's / root's).

    Returns:
        ``(phrases, embeddings (C, D) float32, reassigned)``: the dict key used per class, its vector, and the
        classes whose key is not their own phrase (empty for ``by_name``).
    """
    if order not in EMBEDDING_ORDERS:
        raise ValueError(f"unknown embedding order {order!r}; expected one of {', '.join(EMBEDDING_ORDERS)}")
    name_map, source = _name_map(dataset, root)
    correct, unmatched = match_text_keys(class_names, text, name_map)
    if order == "by_name":
        if unmatched:
            raise AvcaError(f"no embedding found by name (using {source}) for {len(unmatched)} class(es): "
                            f"{unmatched[:10]}; give the dataset (--dataset) so its class-name map is used")
        phrases = [correct[n] for n in class_names]
        return phrases, np.stack([text[p] for p in phrases]).astype(np.float32), []
    ids = {c.lower(): i for i, c in enumerate(sorted(all_class_names or _all_class_names(dataset, root)))}
    table_keys = sorted(text)  # dict(sorted(data_raw.items())) in the reference
    phrases = []
    for name in class_names:
        class_id = ids.get(name.lower())
        if class_id is None:
            raise AvcaError(f"class {name!r} is not in the dataset's all_class.txt (needed for the reference order)")
        if class_id >= len(table_keys):
            raise AvcaError(f"class {name!r} has id {class_id} but the embedding dict has only {len(table_keys)} "
                            "entries (the reference order indexes it by class id)")
        phrases.append(table_keys[class_id])
    reassigned = [n for n, p in zip(class_names, phrases, strict=True) if correct.get(n) != p]
    return phrases, np.stack([text[p] for p in phrases]).astype(np.float32), reassigned


def prepare_output(path: Path, owned: Sequence[str], overwrite: bool, what: str, marker: str | None = None) -> None:
    """Refuse a non-empty ``path`` unless ``overwrite``; with it, remove only the entries in ``owned``.

    A folder holding ``marker`` was left by an interrupted run of the same command: its ``owned`` entries are
    removed and the run starts again, as with ``overwrite``. The lock file (held by the caller) does not count.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise AvcaError(f"{path}: exists and is not a directory")
    if path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir()):
        interrupted = marker is not None and (path / marker).exists()
        if not overwrite and not interrupted:
            raise AvcaError(f"{path}: output {what} is not empty (use --overwrite to replace it)")
        for name in (*owned, *([marker] if interrupted else [])):
            target = path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
        if interrupted:
            remove_temporaries(path)  # leftovers of atomic writes beside the owned entries (we hold the lock)
            _logger.warning("%s was left incomplete by an interrupted run: removed its partial %s, starting again",
                            path, what)
        else:
            _logger.info("--overwrite: removed the previous %s in %s", what, path)
    path.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def writing_output(path: Path, owned: Sequence[str], overwrite: bool, what: str, marker: str) -> Iterator[None]:
    """Lock ``path``, prepare it (:func:`prepare_output`) and mark it incomplete until the block ends normally.

    A second process on the same folder is refused while this one runs (:class:`LockedError`); a run that dies
    leaves the marker, so the same command started again replaces the partial output instead of refusing it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise AvcaError(f"{path}: exists and is not a directory")
    with DirectoryLock(path, what):
        prepare_output(path, owned, overwrite, what, marker)
        atomic_write_text(path / marker, json.dumps({"pid": os.getpid()}) + "\n")
        yield
        crash_point(f"before-done:{marker}")
        (path / marker).unlink()


def load_export_splits(cache: Path, splits_dir: Path | None, default_subdir: str) -> tuple[Path, dict[str, Any]]:
    """The split folder an export reads (``splits_dir``, else ``cache/default_subdir``) and its loaded splits."""
    splits_dir = Path(splits_dir) if splits_dir is not None else cache / default_subdir
    if not splits_dir.is_dir():
        raise SplitError(f"{splits_dir}: split folder not found (give --splits DIR; only imported caches have "
                         f"{default_subdir})")
    return splits_dir, load_splits(splits_dir)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_text_file(text_dir: Path, dataset: str | None) -> Path:
    if not text_dir.is_dir():
        raise AvcaError(f"{text_dir}: text embedding folder not found")
    if dataset is not None and (text_dir / REFERENCE_TEXT_FILES[dataset]).is_file():
        return text_dir / REFERENCE_TEXT_FILES[dataset]
    found = sorted(text_dir.glob("*.npy"))
    if len(found) != 1:
        raise AvcaError(f"{text_dir}: expected one .npy embedding dict, found {[p.name for p in found]}"
                        + ("" if dataset else "; give the dataset (--dataset) to pick the reference file name"))
    return found[0]


def code_version() -> str:
    try:
        return metadata.version("avzsl")
    except metadata.PackageNotFoundError:
        return "unknown"
