"""The packaged media of the real-media benchmark: unpack the Debian packages, stage the catalogue's files.

:func:`stage_media` puts every file of :data:`~avzsl.pipeline.synth.real_benchmark_catalogue.CATALOGUE` under
``DIR/media/<class>/<package>-<name>`` (Tux Paint stamps and recordings and 0 A.D. recordings copied unchanged,
Art4Apps drawings with their white card made transparent and saved as PNG) and returns the classes with their
attributions, for :func:`avzsl.pipeline.synth.real_benchmark.build_world`. A file already staged is kept, so a
rebuild needs no package at all once ``DIR/media`` is complete.
"""

from __future__ import annotations

import logging
import subprocess
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import numpy as np

from avzsl.pipeline.synth.real_benchmark import ClassFiles
from avzsl.pipeline.synth.real_benchmark_catalogue import CATALOGUE, PACKAGES, ClassSources, Source

_logger = logging.getLogger(__name__)


def unpack_deb(key: str, deb: Path | None, work: Path) -> Path:
    """Unpack package ``key`` of :data:`PACKAGES` (``deb``, or ``apt-get download`` of the pinned version into
    ``work``) with ``dpkg-deb -x``; returns the root of the catalogue's paths (for ``0ad``: ``public.zip``)."""
    package, version, root = PACKAGES[key][:3]
    if deb is None:
        subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=work, check=True)
        deb = next(work.glob(f"{package}_*.deb"))
    target = work / key
    if not (target / root).exists():
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    return target / root


def clear_card(src: Path, dst: Path) -> None:
    """Save an Art4Apps drawing as RGBA PNG with its white card (reached from the border) made transparent."""
    from PIL import Image, ImageDraw

    with Image.open(src) as image:
        rgb = image.convert("RGB")
    marker = (1, 2, 3)
    filled = rgb.copy()
    w, h = filled.size
    for xy in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)):
        if filled.getpixel(xy) != marker:
            ImageDraw.floodfill(filled, xy, marker, thresh=40)
    alpha = np.where(np.all(np.asarray(filled) == marker, axis=-1), 0, 255).astype(np.uint8)
    tmp = dst.with_name(dst.name + ".part.png")
    Image.fromarray(np.dstack([np.asarray(rgb), alpha]), "RGBA").save(tmp, optimize=True)
    tmp.replace(dst)


def staged_name(source: Source) -> str:
    """``<package>-<file name>`` (an Art4Apps JPEG becomes ``.png``)."""
    name = PurePosixPath(source.path).name
    if source.package == "art":
        name = str(PurePosixPath(name).with_suffix(".png"))
    return f"{source.package}-{name}"


def _fetch(source: Source, roots: Mapping[str, Path], dst: Path) -> None:
    if source.package not in roots:
        raise FileNotFoundError(f"{dst}: not staged yet and no {PACKAGES[source.package][0]} package given")
    root = roots[source.package]
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".part")
    if source.package == "art":
        clear_card(root / source.path, dst)
        return
    if source.package == "0ad" and root.is_file():  # the package's public.zip
        with zipfile.ZipFile(root) as archive:
            tmp.write_bytes(archive.read(source.path))
    else:  # a Tux Paint file, or 0 A.D.'s files already out of public.zip
        tmp.write_bytes((root / source.path).read_bytes())
    tmp.replace(dst)


def source_row(source: Source) -> dict[str, str]:
    """Attribution of a packaged file: source (package, version, path), licence, copyright."""
    package, version, root, licence, copyright_ = PACKAGES[source.package]
    where = f"/{root}!{source.path}" if source.package == "0ad" else f"/{root}/{source.path}"
    return {"source": f"{package} {version}: {where}", "licence": licence, "copyright": copyright_}


def stage_media(out_dir: Path, roots: Mapping[str, Path],
                catalogue: Mapping[str, ClassSources] = CATALOGUE,
                ) -> tuple[dict[str, ClassFiles], dict[Path, dict[str, str]]]:
    """Stage every catalogue file under ``out_dir/media`` (files already there are kept; ``roots`` maps a package
    key to its unpacked root and is only needed for missing files).

    Returns:
        ``({class: ClassFiles on the staged files}, {staged path: attribution})``.
    """
    classes: dict[str, ClassFiles] = {}
    attributions: dict[Path, dict[str, str]] = {}
    fetched = 0
    for name, sources in catalogue.items():
        def stage(source: Source, cls: str = name) -> Path:
            nonlocal fetched
            dst = Path(out_dir) / "media" / cls / staged_name(source)
            if not dst.is_file():
                _fetch(source, roots, dst)
                fetched += 1
            attributions[dst] = source_row(source)
            return dst

        classes[name] = ClassFiles(tuple(map(stage, sources.pictures)), tuple(map(stage, sources.recordings)))
    _logger.info("real-media benchmark media: %d files staged, %d kept", fetched, len(attributions) - fetched)
    return classes, attributions
