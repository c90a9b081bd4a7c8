"""Videos under ``--videos-root``: listed and opened by a path relative to the root, never outside it.

A requested path is refused when it is absolute, holds a ``..`` part, a backslash or a NUL, or when the file it
names (symlinks resolved) lies outside the root: a symlink inside the root that points out of it is refused like
``../``. Only files with a video extension (the name asked for and the file it resolves to) are served, so a root
that also holds other files does not expose them. The listing walks the root without following symlinked folders
and leaves out files that resolve outside.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from avzsl.pipeline.data.video_list import VIDEO_EXTENSIONS

MAX_LISTED = 5000


class PathRefusedError(ValueError):
    """A path that does not name a file under the videos root (the message says why)."""


class VideoRoot:
    """The folder a server was started with (``--videos-root``), resolved once."""

    def __init__(self, folder: Path) -> None:
        self.root = Path(folder).resolve(strict=True)
        if not self.root.is_dir():
            raise NotADirectoryError(20, "--videos-root is not a folder", str(folder))

    def resolve(self, relative: str) -> Path:
        """The file ``relative`` names under the root (symlinks resolved).

        Raises:
            PathRefusedError: absolute, ``..``, backslash or NUL; outside the root after resolving; not a regular file.
        """
        text = str(relative)
        if not text or "\x00" in text or "\\" in text:
            raise PathRefusedError("refused: not a path relative to the videos folder")
        pure = PurePosixPath(text)
        if pure.is_absolute() or ".." in pure.parts:
            raise PathRefusedError(
                f"refused: {text!r} is not inside the videos folder (absolute paths and .. are refused)"
            )
        try:
            resolved = (self.root / pure).resolve(strict=True)
        except (OSError, RuntimeError) as exc:  # missing, or a symlink loop
            raise PathRefusedError(f"not found under the videos folder: {text}") from exc
        if not resolved.is_relative_to(self.root):
            raise PathRefusedError(f"refused: {text!r} leads outside the videos folder (a symlink out of it)")
        if not resolved.is_file():
            raise PathRefusedError(f"not a file: {text}")
        if pure.suffix.lower() not in VIDEO_EXTENSIONS or resolved.suffix.lower() not in VIDEO_EXTENSIONS:
            # a videos folder may hold other files (or be a home folder): only videos are served
            names = ", ".join(sorted(VIDEO_EXTENSIONS))
            raise PathRefusedError(f"refused: {text!r} is not a video file name ({names})")
        return resolved

    def videos(self) -> list[str]:
        """Root-relative POSIX paths of the video files under the root (by extension; sorted; at most
        :data:`MAX_LISTED`), symlinked folders not followed, files resolving outside left out."""
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                if Path(name).suffix.lower() not in VIDEO_EXTENSIONS:
                    continue
                relative = (Path(dirpath) / name).relative_to(self.root).as_posix()
                try:
                    self.resolve(relative)
                except PathRefusedError:
                    continue
                found.append(relative)
                if len(found) >= MAX_LISTED:
                    return sorted(found)
        return sorted(found)
