"""One-off conversion of the released AVCA class-name embeddings from pickles to safe ``.npz`` files.

The released files (``word_embeddings_{ucf,activity,vggsound}_normed.npy``, repo ExplainableML/AVCA-GZSL,
``w2v_features/``) are ``np.save`` of a Python dict, i.e. pickles: unpickling them can run arbitrary code. This
script reads them once, from a known local copy, with the restricted unpickler of ``pipeline/core/safe_pickle.py``
(no code from the file runs), and writes ``text_embeddings/<ds>.npz`` with two arrays that load with
``allow_pickle=False``:

    names    (C,)     unicode, the dict keys (the "manual" spaced class names), sorted
    vectors  (C, 300) float32, row i = embedding of names[i], values unchanged

A maintainer script, not shipped with the package (like ``build_demo_media.py`` beside it). Run from the repository
root::

    .venv/bin/python scripts/convert_text_embeddings.py \
        --src /work/shared/data_manifests_reference/text_embeddings --out data_manifests/text_embeddings
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from avzsl.hashing import file_sha256
from avzsl.pipeline.core.safe_pickle import load_text_embedding_dict

# released file stem -> our dataset key
SOURCES = {
    "word_embeddings_ucf_normed.npy": "ucf",
    "word_embeddings_activity_normed.npy": "activitynet",
    "word_embeddings_vggsound_normed.npy": "vggsound",
}


def convert(src: Path, out: Path) -> dict[str, dict[str, object]]:
    """Convert every known released file found in ``src``; returns provenance per dataset."""
    out.mkdir(parents=True, exist_ok=True)
    provenance: dict[str, dict[str, object]] = {}
    for file_name, key in SOURCES.items():
        path = src / file_name
        if not path.is_file():
            sys.stderr.write(f"skipping {path}: not found\n")
            continue
        # The released file is a pickle; the restricted unpickler admits only numpy's array globals (no code runs).
        raw = load_text_embedding_dict(path)
        names = sorted(raw)
        vectors = np.stack([np.asarray(raw[n], dtype=np.float32) for n in names])
        np.savez(out / f"{key}.npz", names=np.array(names, dtype=np.str_), vectors=vectors)
        check = np.load(out / f"{key}.npz", allow_pickle=False)
        assert list(check["names"]) == names and np.array_equal(check["vectors"], vectors)
        provenance[key] = {
            "source": f"ExplainableML/AVCA-GZSL w2v_features/{file_name}",
            "source_sha256": file_sha256(path),
            "classes": len(names),
            "dim": int(vectors.shape[1]),
        }
        sys.stdout.write(f"{file_name} -> {out / (key + '.npz')}: {vectors.shape}\n")
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    return provenance


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True, help="folder with the released .npy pickles")
    parser.add_argument("--out", type=Path, required=True, help="output folder for <ds>.npz")
    args = parser.parse_args()
    convert(args.src, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
