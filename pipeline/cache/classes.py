"""The class table, ``classes.h5``: class names, the phrases embedded for them, their embeddings and provenance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avzsl.pipeline.cache.h5 import (
    DIGESTS_ATTR,
    open_h5,
    put_strings,
    read_dataset,
    verify_datasets,
    write_h5_atomically,
)
from avzsl.pipeline.cache.layout import CLASS_TABLE, RERUN, SCHEMA_VERSION, ClassTable
from avzsl.pipeline.core.checksums import array_digest, strings_digest
from avzsl.pipeline.core.errors import CacheError


def write_class_table(cache_dir: Path, table: ClassTable) -> None:
    """Write ``classes.h5`` atomically."""
    with write_h5_atomically(Path(cache_dir) / CLASS_TABLE) as f:
        digests: dict[str, str] = {}
        put_strings(f, "name", list(table.names), digests)
        put_strings(f, "phrase", list(table.phrases), digests)
        embeddings = table.embeddings.astype(np.float32)
        f.create_dataset("embedding", data=embeddings)
        digests["embedding"] = array_digest(embeddings)
        provenance = json.dumps(table.provenance, sort_keys=True)
        f.attrs["provenance"] = provenance
        digests["provenance"] = strings_digest([provenance])
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs[DIGESTS_ATTR] = json.dumps(digests, sort_keys=True)
        f.attrs["complete"] = True


def read_class_table(cache_dir: Path) -> ClassTable:
    """Read ``classes.h5``; raises :class:`CacheError` naming the file when absent or corrupt."""
    path = Path(cache_dir) / CLASS_TABLE
    if not path.exists():
        raise CacheError(f"{path}: the cache has no class table")
    try:
        with open_h5(path, virtual_ok=False) as f:
            if not bool(f.attrs.get("complete", False)):
                raise CacheError(f"{path}: class table is incomplete")
            values = {name: read_dataset(f, name) for name in ("name", "phrase", "embedding")}
            provenance = f.attrs.get("provenance", "{}")
            values["provenance"] = [provenance.decode() if isinstance(provenance, bytes) else provenance]
            verify_datasets(path, f, values, "class table")
            return ClassTable(
                names=values["name"],
                phrases=values["phrase"],
                embeddings=values["embedding"],
                provenance=json.loads(values["provenance"][0]),
            )
    except (OSError, KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheError(f"{path}: corrupt class table ({exc}); {RERUN}") from exc
