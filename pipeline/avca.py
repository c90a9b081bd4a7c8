"""Import and export of the released AVCA feature layout (avgzsl_conventions.md section 2).

Layout (``ROOT`` = one dataset folder of ``avgzsl_benchmark_datasets/``, e.g. ``.../UCF``)::

    ROOT/features/<features>/{audio,video}/<stage_split>/<ClassName>.h5
        data        (n_videos_of_class, D) float32
        video_urls  (n_videos_of_class,) ASCII bytes (fixed S80 or variable length), row-aligned between the
                    audio and the video file of a class
    ROOT/features/<features>/text/word_embeddings_<ds>_normed.npy
        np.save of a Python dict {manual phrase: (300,) float32}: a PICKLE, loaded with allow_pickle=True only by
        :func:`import_avca`, an explicit user request on a folder the user names.

AVCA's ``video`` modality is avzsl's ``visual``. The import writes an avzsl cache (``pipeline/cache.py``) plus the
split membership the folder layout implies, as a reference-format split folder ``CACHE/splits/avca``. The export
writes the layout back from a cache and a split folder. Details and caveats: ``docs/avca_interop.md``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
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

from avzsl.pipeline.atomic import atomic_write, atomic_write_text, remove_temporaries
from avzsl.pipeline.cache import (
    CACHE_INFO,
    CLASS_TABLE,
    INDEX_CSV,
    INDEX_H5,
    SHARD_DIR,
    ClassTable,
    VideoFeatures,
    finalize,
    load_features,
    read_cache_info,
    read_class_table,
    shard_path,
    write_cache_info,
    write_class_table,
    write_h5,
    write_shard,
)
from avzsl.pipeline.errors import UserError
from avzsl.pipeline.faults import crash_point
from avzsl.pipeline.lock import LOCK_NAME, DirectoryLock
from avzsl.pipeline.splits import (
    STAGE_SPLITS,
    SplitError,
    load_splits,
    match_videos,
    read_class_list,
    write_split_folder,
)

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
_DUPLICATE_ATOL = 1e-6  # a video found in two stage splits must carry the same features (up to float noise)


class AvcaError(UserError):
    """The AVCA folder (or the cache to export) is malformed; the message names the file(s)."""


@dataclass
class ImportReport:
    """What :func:`import_avca` did.

    Attributes:
        cache: the written cache directory.
        num_videos: distinct videos stored.
        classes: class names (file-name spelling), in class-table order.
        stage_videos: rows per stage split (videos listed in several stage splits count in each).
        repeated_videos: videos listed in more than one stage split (stored once, features checked equal).
        embedding_order: ``by_name`` or ``reference``.
        reassigned_classes: classes whose stored embedding is another class's phrase (``reference`` order only;
            empty for ``by_name``).
        text_file: the embedding dict that was read.
        splits_dir: the split folder written inside the cache.
    """

    cache: Path
    num_videos: int
    classes: list[str]
    stage_videos: dict[str, int]
    repeated_videos: int
    embedding_order: str
    reassigned_classes: list[str]
    text_file: Path
    splits_dir: Path


@dataclass
class ExportReport:
    """What :func:`export_avca` did.

    Attributes:
        out_dir: the dataset folder written (``out_dir/features/<features>/...``).
        stage_videos: videos written per stage split.
        missing: per stage split, split filenames with no video in the cache (not written).
        text_file: the written embedding dict.
        url_dtype: ``S80`` or ``vlen`` (see :func:`_url_dataset_dtype`).
    """

    out_dir: Path
    stage_videos: dict[str, int]
    missing: dict[str, list[str]] = field(default_factory=dict)
    text_file: Path | None = None
    url_dtype: str = "S80"


# ----------------------------------------------------------------------------------------------------------
# small helpers


def _normalise(name: str) -> str:
    """Name key for matching without a name map: lower-case, spaces and underscores removed."""
    return name.lower().replace(" ", "").replace("_", "")


def _checked(path: Path, root: Path, allow_outside: bool) -> Path:
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
    """Load a released embedding dict (``np.save`` of ``{phrase: (D,) float32}``).

    SECURITY: the file is a pickle and is loaded with ``allow_pickle=True``, which can run code. Only call this on
    files you trust; :func:`import_avca` does so because the user explicitly asked to import that folder.
    """
    try:
        raw = np.load(path, allow_pickle=True)
        obj = raw.item() if isinstance(raw, np.ndarray) and raw.dtype == object and raw.shape == () else raw
    except (OSError, ValueError, EOFError) as exc:
        raise AvcaError(f"{path}: not a readable .npy embedding dict ({exc})") from exc
    if not isinstance(obj, Mapping) or not obj:
        raise AvcaError(f"{path}: expected a non-empty dict {{class phrase: vector}}, found {type(obj).__name__}")
    out = {str(k): np.asarray(v, dtype=np.float32).reshape(-1) for k, v in obj.items()}
    dims = {v.shape[0] for v in out.values()}
    if len(dims) != 1:
        raise AvcaError(f"{path}: embedding vectors differ in length: {sorted(dims)}")
    return out


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
    by_norm: dict[str, list[str]] = {}
    for key in text:
        by_norm.setdefault(_normalise(key), []).append(key)
    correct: dict[str, str] = {}
    unmatched = []
    for name in class_names:
        phrase = name_map.get(name.lower()) if name_map is not None else None
        if phrase is None or phrase not in text:
            candidates = by_norm.get(_normalise(phrase or name), [])
            phrase = candidates[0] if len(candidates) == 1 else None
        if phrase is None:
            unmatched.append(name)
        else:
            correct[name] = phrase
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


def _prepare_output(path: Path, owned: Sequence[str], overwrite: bool, what: str, marker: str | None = None) -> None:
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
def _writing_output(path: Path, owned: Sequence[str], overwrite: bool, what: str, marker: str) -> Iterator[None]:
    """Lock ``path``, prepare it (:func:`_prepare_output`) and mark it incomplete until the block ends normally.

    A second process on the same folder is refused while this one runs (:class:`LockedError`); a run that dies
    leaves the marker, so the same command started again replaces the partial output instead of refusing it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise AvcaError(f"{path}: exists and is not a directory")
    with DirectoryLock(path, what):
        _prepare_output(path, owned, overwrite, what, marker)
        atomic_write_text(path / marker, json.dumps({"pid": os.getpid()}) + "\n")
        yield
        crash_point(f"before-done:{marker}")
        (path / marker).unlink()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _find_text_file(text_dir: Path, dataset: str | None) -> Path:
    if not text_dir.is_dir():
        raise AvcaError(f"{text_dir}: text embedding folder not found")
    if dataset is not None and (text_dir / REFERENCE_TEXT_FILES[dataset]).is_file():
        return text_dir / REFERENCE_TEXT_FILES[dataset]
    found = sorted(text_dir.glob("*.npy"))
    if len(found) != 1:
        raise AvcaError(f"{text_dir}: expected one .npy embedding dict, found {[p.name for p in found]}"
                        + ("" if dataset else "; give the dataset (--dataset) to pick the reference file name"))
    return found[0]


# ----------------------------------------------------------------------------------------------------------
# import


@dataclass
class _Video:
    class_name: str
    audio: np.ndarray
    visual: np.ndarray
    source: str  # "audio file | video file", for error messages


def _read_stage(stage_dirs: dict[str, Path], root: Path, allow_outside: bool) -> list[tuple[str, Path, Path]]:
    """``(class name, audio file, video file)`` of one stage split, classes sorted by file name."""
    audio_dir, video_dir = stage_dirs["audio"], stage_dirs["video"]
    for directory in (audio_dir, video_dir):
        if not directory.is_dir():
            raise AvcaError(f"{directory}: stage split folder not found (the layout needs all of {STAGE_SPLITS})")
    audio = {p.stem: p for p in audio_dir.glob("*.h5")}
    video = {p.stem: p for p in video_dir.glob("*.h5")}
    extra = sorted(set(video) - set(audio))
    if extra:
        raise AvcaError(f"{video[extra[0]]}: video features without an audio file {audio_dir / (extra[0] + '.h5')}")
    pairs = []
    for stem in sorted(audio):
        if stem not in video:
            raise AvcaError(f"{audio[stem]}: audio features without a video file {video_dir / (stem + '.h5')}")
        pairs.append((stem, _checked(audio[stem], root, allow_outside), _checked(video[stem], root, allow_outside)))
    return pairs


def import_avca(
    root: Path,
    out_cache: Path,
    features: str = "main_features",
    dataset: str | None = None,
    embedding_order: str = "by_name",
    *,
    shard_size: int = 2000,
    allow_outside: bool = False,
    overwrite: bool = False,
) -> ImportReport:
    """Import a released AVCA feature folder into an avzsl cache.

    Args:
        root: AVCA dataset folder holding ``features/<features>/``.
        out_cache: cache directory to write (must be empty or absent unless ``overwrite``).
        features: feature method folder name (``main_features`` = SeLaVi).
        dataset: ``ucf``/``activitynet``/``vggsound`` (any case) or ``None``; selects the class-name map.
        embedding_order: ``by_name`` (correct) or ``reference`` (reproduce the reference loader's mix-up).
        shard_size: videos per cache shard.
        allow_outside: accept files whose resolved path (symlinks followed) lies outside ``root``.
        overwrite: replace the cache entries this import writes if ``out_cache`` is not empty.

    Returns:
        An :class:`ImportReport`.
    """
    if dataset is not None:
        from avzsl.data_manifests import dataset_key

        dataset = dataset_key(dataset)
    if embedding_order not in EMBEDDING_ORDERS:
        raise ValueError(f"unknown embedding order {embedding_order!r}; expected one of {EMBEDDING_ORDERS}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    if "/" in features or features in ("", ".", ".."):
        raise AvcaError(f"{features!r}: the feature method must be a plain folder name")
    root = Path(root).resolve()
    feature_dir = _checked(root / "features" / features, root, allow_outside)
    if not feature_dir.is_dir():
        raise AvcaError(f"{root / 'features' / features}: AVCA feature folder not found")

    videos: dict[str, _Video] = {}
    order: list[str] = []
    spelling: dict[str, str] = {}  # class name lower -> first spelling seen
    membership: dict[str, list[tuple[str, str]]] = {}
    stage_classes: dict[str, list[str]] = {}
    repeated: set[str] = set()
    for stage in STAGE_SPLITS:
        dirs = {m: feature_dir / m / stage for m in MODALITIES}
        rows: list[tuple[str, str]] = []
        stage_classes[stage] = []
        for stem, audio_file, video_file in _read_stage(dirs, root, allow_outside):
            class_name = spelling.setdefault(stem.lower(), stem)
            stage_classes[stage].append(class_name)
            a_data, a_urls = read_class_file(audio_file)
            v_data, v_urls = read_class_file(video_file)
            if len(a_urls) != len(v_urls):
                raise AvcaError(f"{audio_file} and {video_file} are not row-aligned: "
                                f"{len(a_urls)} vs {len(v_urls)} videos")
            if a_urls != v_urls:
                i = next(i for i, (a, v) in enumerate(zip(a_urls, v_urls, strict=True)) if a != v)
                raise AvcaError(f"{audio_file} and {video_file} are not row-aligned: row {i} is "
                                f"{a_urls[i]!r} vs {v_urls[i]!r}")
            source = f"{audio_file} | {video_file}"
            for i, vid in enumerate(a_urls):
                rows.append((vid, class_name))
                seen = videos.get(vid)
                if seen is None:
                    videos[vid] = _Video(class_name, a_data[i], v_data[i], source)
                    order.append(vid)
                    continue
                repeated.add(vid)
                if seen.class_name.lower() != class_name.lower():
                    raise AvcaError(f"video {vid!r} is class {seen.class_name!r} in {seen.source} but "
                                    f"{class_name!r} in {source}")
                for name, new, old in (("audio", a_data[i], seen.audio), ("video", v_data[i], seen.visual)):
                    if new.shape != old.shape or not np.allclose(new, old, rtol=0, atol=_DUPLICATE_ATOL):
                        diff = float(np.max(np.abs(new - old))) if new.shape == old.shape else float("nan")
                        raise AvcaError(f"video {vid!r} has different {name} features in {seen.source} and "
                                        f"{source} (max abs difference {diff:.3g})")
        membership[stage] = rows
        _logger.info("%s: %d classes, %d videos", stage, len(stage_classes[stage]), len(rows))
    if not videos:
        raise AvcaError(f"{feature_dir}: no videos found")
    dims = {(v.audio.shape[0], v.visual.shape[0]) for v in videos.values()}
    if len(dims) != 1:
        raise AvcaError(f"{feature_dir}: feature dimensions differ between files: {sorted(dims)}")

    text_file = _checked(_find_text_file(feature_dir / "text", dataset), root, allow_outside)
    _logger.warning("loading %s with allow_pickle=True (a pickle: only import folders you trust)", text_file)
    text = load_text_dict(text_file)
    classes = sorted(spelling.values())
    phrases, embeddings, reassigned = map_class_embeddings(classes, text, dataset, embedding_order, root)
    if embedding_order == "reference":
        _logger.warning("reference embedding order: %d of %d classes receive another class's embedding%s",
                        len(reassigned), len(classes), f" ({', '.join(reassigned[:8])}, ...)" if reassigned else "")

    out_cache = Path(out_cache)
    owned = (SHARD_DIR, CLASS_TABLE, INDEX_H5, INDEX_CSV, CACHE_INFO, str(SPLITS_SUBDIR))
    with _writing_output(out_cache, owned, overwrite, "cache", IMPORT_MARKER):
        text_sha, splits_dir, stage_videos = _write_import(
            out_cache, order, videos, shard_size, text_file, classes, phrases, embeddings, embedding_order,
            reassigned, stage_classes, membership)
        record = {
            "root": str(root), "features": features, "dataset": dataset, "embedding_order": embedding_order,
            "text_file": text_file.relative_to(root).as_posix() if text_file.is_relative_to(root) else str(text_file),
            "text_sha256": text_sha, "reassigned_classes": reassigned, "stage_videos": stage_videos,
            "num_videos": len(order), "repeated_videos": len(repeated),
            "feature_dims": {"audio": int(next(iter(dims))[0]), "visual": int(next(iter(dims))[1])},
            "imported_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        write_cache_info(out_cache, {
            "encoder": {"name": f"selavi (imported from AVCA {features})"},
            "weights": {"sha256": "unknown (imported)"},
            "code_version": _code_version(),
            "avca_import": record,
        })
        finalize(out_cache)
    _logger.info("imported %d videos of %d classes into %s (%d listed in several stage splits, stored once)",
                 len(order), len(classes), out_cache, len(repeated))
    return ImportReport(out_cache, len(order), classes, stage_videos, len(repeated), embedding_order, reassigned,
                        text_file, splits_dir)


def _write_import(
    out_cache: Path, order: Sequence[str], videos: Mapping[str, _Video], shard_size: int, text_file: Path,
    classes: list[str], phrases: list[str], embeddings: np.ndarray, embedding_order: str, reassigned: list[str],
    stage_classes: Mapping[str, Sequence[str]], membership: Mapping[str, Sequence[tuple[str, str]]],
) -> tuple[str, Path, dict[str, int]]:
    """Write the shards, class table and split folder of an import; returns (text sha256, splits dir, counts)."""
    for index, start in enumerate(range(0, len(order), shard_size)):
        batch = [VideoFeatures(vid, videos[vid].class_name, videos[vid].audio, videos[vid].visual)
                 for vid in order[start : start + shard_size]]
        write_shard(shard_path(out_cache, index), batch, {"shard_index": index, "source": "avca_import"})
        crash_point(f"avca-import-shard-{index}")
    text_sha = _sha256(text_file)
    write_class_table(out_cache, ClassTable(classes, phrases, embeddings, provenance={
        "embedder": "imported from AVCA", "file": text_file.name, "sha256": text_sha,
        "embedding_order": embedding_order, "reassigned_classes": reassigned,
    }))
    splits_dir = out_cache / SPLITS_SUBDIR
    write_split_folder(splits_dir, stage_classes, membership)
    return text_sha, splits_dir, {stage: len(rows) for stage, rows in membership.items()}


def _code_version() -> str:
    try:
        return metadata.version("avzsl")
    except metadata.PackageNotFoundError:
        return "unknown"


# ----------------------------------------------------------------------------------------------------------
# export


def _url_dataset_dtype(urls: Sequence[str]) -> tuple[Any, str]:
    """The reference's ``S80`` when every name is ASCII and fits, else variable-length UTF-8 (never truncate)."""
    if all(u.isascii() and len(u) <= S80 for u in urls):
        return f"S{S80}", "S80"
    return h5py.string_dtype(encoding="utf-8"), "vlen"


def _write_class_file(path: Path, data: np.ndarray, urls: Sequence[str], url_dtype: Any) -> None:
    def write(tmp: Path) -> None:
        with write_h5(tmp) as f:
            f.create_dataset("data", data=np.asarray(data, dtype=np.float32))
            encoded = [u.encode("utf-8") for u in urls]
            if isinstance(url_dtype, str):
                f.create_dataset("video_urls", data=np.array(encoded, dtype=url_dtype), dtype=url_dtype)
            else:
                f.create_dataset("video_urls", data=np.array(list(urls), dtype=object), dtype=url_dtype)

    atomic_write(path, write)


def _write_export(
    out_dir: Path, features: str, splits: Mapping[str, Any], splits_dir: Path, feats: Any, audio: np.ndarray,
    visual: np.ndarray, position: Mapping[str, int], table: ClassTable, text_file: str, cache: Path,
) -> tuple[ExportReport, set[str], Path]:
    """Write the class files of every stage split and the text dict; returns (report, url kinds, text path)."""
    feature_dir = out_dir / "features" / features
    report = ExportReport(out_dir, {})
    url_kinds = set()
    for stage in STAGE_SPLITS:
        split = splits[stage]
        rows = split.videos_of_listed_classes()
        match = match_videos(rows, feats.video_ids)
        if match.ambiguous:
            raise AvcaError(f"{splits_dir / (stage + '.csv')}: {len(match.ambiguous)} filename(s) match several "
                            f"cache videos, e.g. {list(match.ambiguous[:5])}")
        if match.missing:
            _logger.warning("%s: %d of %d videos are not in the cache (skipped), e.g. %s", stage,
                            len(match.missing), len(rows), list(match.missing[:3]))
            report.missing[stage] = list(match.missing)
        missing = set(match.missing)
        names = [row[0] for row in rows if row[0] not in missing]  # row filenames, in match order
        canonical = {c.lower(): c for c in split.classes}
        by_class: dict[str, list[int]] = {c: [] for c in split.classes}
        for k, label in enumerate(match.labels):
            by_class[canonical[label.lower()]].append(k)
        for class_name, members in by_class.items():
            if "/" in class_name or class_name in (".", ".."):
                raise AvcaError(f"{splits_dir / (stage + '.txt')}: class {class_name!r} cannot be a file name")
            if not members:
                _logger.warning("%s: class %s has no videos in the cache (empty file written)", stage, class_name)
            rows_idx = [position[match.video_ids[k]] for k in members]
            urls = [names[k] for k in members]
            url_dtype, kind = _url_dataset_dtype(urls)
            url_kinds.add(kind)
            dim = {"audio": audio.shape[1], "video": visual.shape[1]}
            for modality, matrix in (("audio", audio), ("video", visual)):
                data = matrix[rows_idx] if rows_idx else np.zeros((0, dim[modality]), np.float32)
                _write_class_file(feature_dir / modality / stage / f"{class_name}.h5", data, urls, url_dtype)
        report.stage_videos[stage] = len(match.video_ids)
        _logger.info("%s: wrote %d classes, %d videos", stage, len(split.classes), len(match.video_ids))
        crash_point(f"avca-export-{stage}")
    text: dict[str, np.ndarray] = {}
    for phrase, vector in zip(table.phrases, table.embeddings, strict=True):
        if phrase in text and not np.array_equal(text[phrase], vector):
            raise AvcaError(f"{cache / CLASS_TABLE}: phrase {phrase!r} has two different embeddings")
        text[phrase] = np.asarray(vector, dtype=np.float32)
    text_path = feature_dir / "text" / text_file

    def write_text(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: np.save would append ".npy" to a path
            np.save(f, text, allow_pickle=True)

    atomic_write(text_path, write_text)
    return report, url_kinds, text_path


def export_avca(
    cache: Path,
    out_dir: Path,
    splits_dir: Path | None = None,
    features: str = "main_features",
    *,
    dataset: str | None = None,
    text_file: str | None = None,
    overwrite: bool = False,
) -> ExportReport:
    """Write an avzsl cache in the AVCA layout (see module docstring).

    Per stage split and class (the split's class list, spelled as there), ``audio``/``video`` ``.h5`` files with
    ``data`` ``(n, D)`` float32 and ``video_urls`` = the split's filenames (fixed ``S80`` bytes as in the reference
    release; variable-length UTF-8 only when a name is longer or not ASCII). Rows of classes not in a stage's class
    list are skipped (``cls`` variant), as the reference does. Split rows are matched to cache ids with
    :func:`~avzsl.pipeline.splits.match_videos`; unmatched rows are logged and reported, ambiguous ones are errors.
    The class table becomes ``text/<name>.npy``, ``np.save`` of ``{phrase: (D,) float32}``.

    Args:
        cache: avzsl cache directory.
        out_dir: AVCA dataset folder to write (``out_dir/features/<features>/``); must be empty unless ``overwrite``
            (which replaces only ``features/<features>``).
        splits_dir: reference-format split folder; default ``cache/splits/avca`` (written by :func:`import_avca`).
        features: feature method folder name.
        dataset: selects the reference embedding file name (``word_embeddings_<ds>_normed.npy``).
        text_file: embedding file name; default: the dataset's reference name when ``dataset`` is given, else the
            imported file's name, else ``word_embeddings_normed.npy``.
        overwrite: allow a non-empty ``out_dir``.
    """
    cache = Path(cache)
    info = read_cache_info(cache)
    if "/" in features or features in ("", ".", ".."):
        raise AvcaError(f"{features!r}: the feature method must be a plain folder name")
    splits_dir = Path(splits_dir) if splits_dir is not None else cache / SPLITS_SUBDIR
    if not splits_dir.is_dir():
        raise SplitError(f"{splits_dir}: split folder not found (give --splits DIR; only imported caches have "
                         f"{SPLITS_SUBDIR})")
    splits = load_splits(splits_dir)
    table = read_class_table(cache)
    feats = load_features(cache)
    audio, visual = feats.audio.numpy(), feats.visual.numpy()
    position = {vid: i for i, vid in enumerate(feats.video_ids)}
    if text_file is None:
        imported = info.get("avca_import", {}).get("text_file")
        if dataset is not None:
            from avzsl.data_manifests import dataset_key

            text_file = REFERENCE_TEXT_FILES[dataset_key(dataset)]
        elif imported:
            text_file = Path(imported).name
        else:
            text_file = "word_embeddings_normed.npy"
    if Path(text_file).name != text_file or not text_file.endswith(".npy"):
        raise AvcaError(f"{text_file!r}: the embedding file must be a plain *.npy file name")

    out_dir = Path(out_dir)
    with _writing_output(out_dir, (f"features/{features}",), overwrite, "folder", EXPORT_MARKER):
        report, url_kinds, text_path = _write_export(out_dir, features, splits, splits_dir, feats, audio, visual,
                                                     position, table, text_file, cache)
    report.text_file = text_path
    report.url_dtype = "vlen" if "vlen" in url_kinds else "S80"
    _logger.info("exported %d videos to %s", sum(report.stage_videos.values()), out_dir / "features" / features)
    return report
