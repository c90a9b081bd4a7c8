"""AVCA feature layout interop (avgzsl_conventions.md section 2): the public names, re-exported.

Code: ``layout.py`` (the layout, reading, class-embedding mapping), ``importer.py`` (``avzsl-import avca``) and
``exporter.py`` (``avzsl-export avca``), plugged into the import/export skeletons every layout shares
(``pipeline/interop/importing.py``, ``exporting.py``, ``common.py``; what the reference loader needs beyond the
feature files: ``reference.py``). Details and caveats: ``docs/avca_interop.md``.
"""

from __future__ import annotations

from avzsl.pipeline.interop.avca.exporter import ExportReport, export_avca
from avzsl.pipeline.interop.avca.importer import ImportReport, import_avca
from avzsl.pipeline.interop.avca.layout import (
    MODALITIES,
    REFERENCE_TEXT_FILES,
    S80,
    SPLITS_SUBDIR,
    AvcaError,
    load_text_dict,
    map_class_embeddings,
    read_class_file,
)
from avzsl.pipeline.interop.common import EMBEDDING_ORDERS, EXPORT_MARKER, IMPORT_MARKER

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
