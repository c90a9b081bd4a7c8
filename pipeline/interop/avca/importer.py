"""``avzsl-import avca``: read a released AVCA feature folder into an avzsl cache.

The AVCA reader plugged into the shared import skeleton (``pipeline/interop/importing.py``). The split membership
the folder layout implies is written as a reference-format split folder ``CACHE/splits/avca``. Layout and checks:
``pipeline/interop/avca/layout.py`` and ``docs/avca_interop.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avzsl.hashing import file_sha256
from avzsl.pipeline.data.splits import STAGE_SPLITS
from avzsl.pipeline.interop.avca.layout import (
    MODALITIES,
    SPLITS_SUBDIR,
    AvcaError,
    find_text_file,
    load_text_dict,
    map_class_embeddings,
    read_class_file,
)
from avzsl.pipeline.interop.importing import (
    ClassText,
    ImportResult,
    ImportSource,
    LayoutReader,
    import_layout,
    open_source,
)

_logger = logging.getLogger(__name__)


@dataclass
class ImportReport(ImportResult):
    """What :func:`import_avca` did: an :class:`~avzsl.pipeline.interop.importing.ImportResult` (class names in
    file-name spelling; ``reassigned_classes``: classes whose stored embedding is another class's phrase) and
    ``text_file``, the embedding dict that was read.
    """

    text_file: Path


class AvcaReader(LayoutReader):
    """AVCA folders: ``features/<method>/{audio,video}/<stage_split>/<Class>.h5`` and one ``text/*.npy`` dict."""

    name = "avca"
    title = "AVCA"
    encoder = "selavi"
    error = AvcaError
    splits_subdir = SPLITS_SUBDIR

    def __init__(self, source: ImportSource) -> None:
        super().__init__(source)
        self.text_file: Path | None = None

    def class_files(self, stage: str) -> Sequence[tuple[str, Path, Path]]:
        """``(class name, audio file, video file)`` of one stage split, classes sorted by file name."""
        audio_dir, video_dir = (self.source.feature_dir / m / stage for m in MODALITIES)
        for directory in (audio_dir, video_dir):
            if not directory.is_dir():
                raise AvcaError(f"{directory}: stage split folder not found (the layout needs all of {STAGE_SPLITS})")
        audio = {p.stem: p for p in audio_dir.glob("*.h5")}
        video = {p.stem: p for p in video_dir.glob("*.h5")}
        extra = sorted(set(video) - set(audio))
        if extra:
            raise AvcaError(f"{video[extra[0]]}: video features without an audio file "
                            f"{audio_dir / (extra[0] + '.h5')}")
        pairs = []
        for stem in sorted(audio):
            if stem not in video:
                raise AvcaError(f"{audio[stem]}: audio features without a video file {video_dir / (stem + '.h5')}")
            pairs.append((stem, self.source.checked(audio[stem]), self.source.checked(video[stem])))
        return pairs

    def read_class(self, audio_file: Path, video_file: Path) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
        """The two ``.h5`` files of a class (:func:`~avzsl.pipeline.interop.avca.layout.read_class_file`)."""
        return (*read_class_file(audio_file), *read_class_file(video_file))

    def class_text(self, classes: list[str]) -> ClassText:
        """Each class's row of the released embedding dict, read with the restricted unpickler."""
        source = self.source
        text_file = source.checked(find_text_file(source.feature_dir / "text", source.dataset))
        _logger.info("reading %s with the restricted unpickler (numeric arrays only)", text_file)
        text = load_text_dict(text_file)
        phrases, embeddings, reassigned = map_class_embeddings(classes, text, source.dataset,
                                                               source.embedding_order, source.root)
        self.text_file = text_file
        sha = file_sha256(text_file)
        return ClassText(phrases, embeddings, reassigned, provenance={"file": text_file.name, "sha256": sha},
                         record={"text_file": source.relative(text_file), "text_sha256": sha})


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
    source = open_source(AvcaReader, root, features, dataset, embedding_order, shard_size, allow_outside)
    reader = AvcaReader(source)
    result = import_layout(reader, out_cache, shard_size, overwrite)
    assert reader.text_file is not None  # set by class_text, which import_layout calls
    return ImportReport(**vars(result), text_file=reader.text_file)
