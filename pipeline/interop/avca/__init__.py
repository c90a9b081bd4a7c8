"""AVCA feature layout interop (avgzsl_conventions.md section 2): the public names, re-exported.

Code: ``avca_common.py`` (layout, reading, class-embedding mapping, output folders), ``avca_import.py``
(``avzsl-import avca``), ``avca_export.py`` and ``avca_reference.py`` (``avzsl-export avca``, with what the
reference loader needs). Details and caveats: ``docs/avca_interop.md``.
"""

from __future__ import annotations

from avzsl.pipeline.interop.avca.exporter import ExportReport, export_avca
from avzsl.pipeline.interop.avca.importer import ImportReport, import_avca
from avzsl.pipeline.interop.avca.layout import (
    EMBEDDING_ORDERS,
    EXPORT_MARKER,
    IMPORT_MARKER,
    MODALITIES,
    REFERENCE_TEXT_FILES,
    S80,
    SPLITS_SUBDIR,
    AvcaError,
    load_text_dict,
    map_class_embeddings,
    read_class_file,
)

__all__ = [
    "EMBEDDING_ORDERS",
    "EXPORT_MARKER",
    "IMPORT_MARKER",
    "MODALITIES",
    "REFERENCE_TEXT_FILES",
    "S80",
    "SPLITS_SUBDIR",
    "AvcaError",
    "ExportReport",
    "ImportReport",
    "export_avca",
    "import_avca",
    "load_text_dict",
    "map_class_embeddings",
    "read_class_file",
]
