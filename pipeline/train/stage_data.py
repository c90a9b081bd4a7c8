"""Assemble in-memory tensors for each part of the two-stage GZSL protocol from a cache and a split definition.

The protocol (avgzsl_conventions.md §5) needs four sets:

============  =========================================  ============================================
part          samples                                    candidate classes
============  =========================================  ============================================
``train1``    stage_1_train                              stage_1_train classes (seen)
``val``       stage_1_val_seen + stage_1_val_unseen      stage_1_train (seen) + stage_1_val_unseen
``train2``    stage_2_train                              stage_2_train classes (seen)
``test``      stage_2_test_seen + stage_2_test_unseen    stage_2_train (seen) + stage_2_test_unseen
============  =========================================  ============================================

Labels come from the split's video list; class names are compared by
:func:`~avzsl.pipeline.data.class_names.class_key` (case and Unicode normalization). The split folder is checked against
the cache first (:func:`~avzsl.pipeline.data.split_checks.validate_splits`: class groups, one split per video,
labels equal to the cache's, no empty evaluation split, no ambiguous name). Split videos that the cache lacks are
collected (never silently ignored) so the caller can report them.

Every part holds the window-averaged ``(N, D)`` features. Only for a method registered with ``needs_sequences``
(TCAF) does the protocol also load the per-window features (:func:`avzsl.pipeline.cache.load_sequences`, trimmed to
the method's :meth:`~avzsl.model.registry.Method.sequence_windows`) and :func:`attach_sequences` zero-pads each part
to its own longest kept sequence ``T`` with an ``(N, T)`` mask; other methods never read or hold sequences.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from avzsl.model.registry import FeatureBatch
from avzsl.pipeline.cache import ClassTable, FeatureTable
from avzsl.pipeline.core.atomic import atomic_write_csv
from avzsl.pipeline.data.class_names import class_key
from avzsl.pipeline.data.split_checks import validate_splits
from avzsl.pipeline.data.splits import SplitError, Splits, StageSplit, match_videos

_logger = logging.getLogger(__name__)


@dataclass
class PartData:
    """Samples and candidate classes of one protocol part.

    Attributes:
        audio: ``(N, D_A)`` float32.
        visual: ``(N, D_V)`` float32.
        labels: ``(N,)`` int64 column index into ``classes``.
        classes: candidate class names (seen first, then unseen).
        seen: ``(C,)`` bool, True for seen (training) classes.
        class_emb: ``(C, D_W)`` float32 class-name embeddings.
        video_ids: the ``N`` cache ids.
        audio_seq: optional ``(N, T, D_A)`` zero-padded per-window audio features (methods with
            ``needs_sequences``), else None.
        visual_seq: optional ``(N, T, D_V)`` per-window visual features, or None.
        seq_mask: optional ``(N, T)`` bool, True where a window is real, or None.
    """

    audio: torch.Tensor
    visual: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    seen: torch.Tensor
    class_emb: torch.Tensor
    video_ids: list[str] = field(default_factory=list)
    audio_seq: torch.Tensor | None = None
    visual_seq: torch.Tensor | None = None
    seq_mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def feature_batch(self, rows: torch.Tensor | slice | None = None) -> FeatureBatch:
        """The method inputs of all videos, or of ``rows`` (a ``(B,)`` long tensor or a slice)."""
        batch = FeatureBatch(self.audio, self.visual, self.audio_seq, self.visual_seq, self.seq_mask)
        return batch if rows is None else batch.index(rows)

    def to(self, device: torch.device | str) -> PartData:
        """A copy with the tensors on ``device``."""
        return PartData(
            self.audio.to(device),
            self.visual.to(device),
            self.labels.to(device),
            self.classes,
            self.seen.to(device),
            self.class_emb.to(device),
            self.video_ids,
            *(None if t is None else t.to(device) for t in (self.audio_seq, self.visual_seq, self.seq_mask)),
        )


@dataclass
class ProtocolData:
    """The four protocol parts plus the split videos missing from the cache.

    ``class_phrases`` maps every class of the cache's class table to the phrase embedded for it (recorded in
    ``model.pt``, so that prediction embeds a class as in training without the cache).
    """

    train1: PartData
    val: PartData
    train2: PartData
    test: PartData
    missing: dict[str, list[str]]
    ambiguous: dict[str, list[str]]
    class_phrases: dict[str, str] = field(default_factory=dict)

    @property
    def num_missing(self) -> int:
        return sum(len(v) for v in self.missing.values())


def _rows(
    stage: StageSplit, features: FeatureTable, known_ids: Sequence[str]
) -> tuple[list[str], list[str], list[str], list[str]]:
    match = match_videos(stage.videos_of_listed_classes(), features.video_ids, known_ids)
    return list(match.video_ids), list(match.labels), list(match.missing), list(match.ambiguous)


def _part(
    stages: Sequence[StageSplit],
    seen_classes: Sequence[str],
    unseen_classes: Sequence[str],
    features: FeatureTable,
    position: dict[str, int],
    class_table: ClassTable,
    missing: dict[str, list[str]],
    ambiguous: dict[str, list[str]],
    known_ids: Sequence[str],
) -> PartData:
    seen_keys = {class_key(s) for s in seen_classes}
    classes = list(seen_classes) + [c for c in unseen_classes if class_key(c) not in seen_keys]
    column = {class_key(c): i for i, c in enumerate(classes)}
    ids: list[str] = []
    labels: list[int] = []
    for stage in stages:
        vids, labs, miss, amb = _rows(stage, features, known_ids)
        if miss:
            missing[stage.name] = miss
        if amb:
            ambiguous[stage.name] = amb
        for vid, lab in zip(vids, labs, strict=True):
            if class_key(lab) not in column:
                raise SplitError(f"{stage.name}: video {vid} has label {lab!r}, which is not a candidate class")
            ids.append(vid)
            labels.append(column[class_key(lab)])
    rows = torch.as_tensor([position[v] for v in ids], dtype=torch.long)
    seen = torch.zeros(len(classes), dtype=torch.bool)
    seen[: len(seen_classes)] = True
    return PartData(
        audio=features.audio.index_select(0, rows),
        visual=features.visual.index_select(0, rows),
        labels=torch.as_tensor(labels, dtype=torch.long),
        classes=classes,
        seen=seen,
        class_emb=torch.from_numpy(class_table.lookup(classes)).float(),
        video_ids=ids,
    )


def build_protocol_data(
    splits: Splits, features: FeatureTable, class_table: ClassTable, known_ids: Sequence[str] = ()
) -> ProtocolData:
    """Build the four protocol parts, after checking the split folder against the cache.

    Args:
        splits: the six stage splits.
        features: all cached features (ids must be unique).
        class_table: class-name embeddings covering every class used by the splits.
        known_ids: ids of the cache's input videos that hold no features (failed extractions), so that a bare
            file stem they share with a cache video is refused as ambiguous.

    Raises:
        SplitError: the split folder breaks a rule of :mod:`avzsl.pipeline.data.split_checks` (file, row, rule).
    """
    validate_splits(splits, dict(zip(features.video_ids, features.class_names, strict=True)), known_ids)
    position = {vid: i for i, vid in enumerate(features.video_ids)}
    missing: dict[str, list[str]] = {}
    ambiguous: dict[str, list[str]] = {}
    s = splits.stages
    train1_cls = s["stage_1_train"].classes
    train2_cls = s["stage_2_train"].classes
    args = (features, position, class_table, missing, ambiguous, known_ids)
    data = ProtocolData(
        train1=_part([s["stage_1_train"]], train1_cls, [], *args),
        val=_part([s["stage_1_val_seen"], s["stage_1_val_unseen"]], train1_cls, s["stage_1_val_unseen"].classes, *args),
        train2=_part([s["stage_2_train"]], train2_cls, [], *args),
        test=_part(
            [s["stage_2_test_seen"], s["stage_2_test_unseen"]], train2_cls, s["stage_2_test_unseen"].classes, *args
        ),
        missing=missing,
        ambiguous=ambiguous,
        class_phrases=dict(zip(class_table.names, class_table.phrases, strict=True)),
    )
    for name in ("train1", "val", "train2", "test"):
        if len(getattr(data, name)) == 0:
            raise SplitError(f"protocol part {name!r} has no video in the cache: check --splits against the cache ids")
    if ambiguous:
        count = sum(len(v) for v in ambiguous.values())
        raise SplitError(
            f"{count} split video name(s) match several cache videos by file stem (e.g. "
            f"{next(iter(ambiguous.values()))[:3]}); give the cache ids in the split files"
        )
    return data


def pad_sequences(
    sequences: Sequence[tuple[np.ndarray, np.ndarray]], audio_dim: int, visual_dim: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-pad per-window features to the longest sequence given.

    Args:
        sequences: N pairs ``(audio (T_i, D_A), visual (T_i, D_V))``; both of a pair have the same ``T_i``.
        audio_dim: D_A (used when N = 0 or every ``T_i`` = 0).
        visual_dim: D_V.

    Returns:
        ``audio_seq (N, T, D_A)``, ``visual_seq (N, T, D_V)`` float32 (zeros after each video's last window) and
        ``seq_mask (N, T)`` bool, True where a window is real; ``T = max(1, max_i T_i)``.
    """
    n = len(sequences)
    t = max([1, *(len(a) for a, _ in sequences)])
    audio = torch.zeros(n, t, audio_dim, dtype=torch.float32)
    visual = torch.zeros(n, t, visual_dim, dtype=torch.float32)
    mask = torch.zeros(n, t, dtype=torch.bool)
    for i, (a, v) in enumerate(sequences):
        if len(a) != len(v):
            raise ValueError(f"video {i}: {len(a)} audio windows but {len(v)} visual windows")
        k = len(a)
        if k:
            audio[i, :k] = torch.from_numpy(np.asarray(a, dtype=np.float32))
            visual[i, :k] = torch.from_numpy(np.asarray(v, dtype=np.float32))
            mask[i, :k] = True
    return audio, visual, mask


def attach_sequences(data: ProtocolData, sequences: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Fill ``audio_seq``, ``visual_seq`` and ``seq_mask`` of the four parts, each padded to its own longest
    sequence (:func:`pad_sequences`).

    Args:
        data: the protocol parts (their ``video_ids`` select the rows).
        sequences: ``{video_id: (audio (T, D_A), visual (T, D_V))}`` for every video of every part
            (:func:`avzsl.pipeline.cache.load_sequences`).
    """
    for name in ("train1", "val", "train2", "test"):
        part: PartData = getattr(data, name)
        missing = [v for v in part.video_ids if v not in sequences]
        if missing:
            raise KeyError(f"part {name!r}: no sequences for {len(missing)} video(s), e.g. {missing[:3]}")
        rows = [sequences[v] for v in part.video_ids]
        part.audio_seq, part.visual_seq, part.seq_mask = pad_sequences(
            rows, int(part.audio.shape[1]), int(part.visual.shape[1]))
        lengths = part.seq_mask.sum(dim=1)
        _logger.info("%s: per-window sequences of %d videos, %d-%d windows (padded to %d), %.1f MB", name, len(part),
                     int(lengths.min()) if len(part) else 0, int(lengths.max()) if len(part) else 0,
                     part.seq_mask.shape[1],
                     (part.audio_seq.numel() + part.visual_seq.numel()) * 4 / 2**20)


def write_missing_report(data: ProtocolData, path: Path) -> None:
    """Write ``stage_split,filename`` rows for split videos absent from the cache."""
    rows = [(stage, name) for stage, names in sorted(data.missing.items()) for name in names]
    atomic_write_csv(path, ["stage_split", "filename"], rows)
