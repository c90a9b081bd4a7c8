"""avzsl: audio-visual generalized zero-shot video classification (Coordinate and Generalize), end to end.

The subpackages live in the repository folders of the same names (``pipeline``, ``extractors``, ``model``,
``data_manifests``), mapped under this package by ``[tool.setuptools] package-dir``; links in this folder lay them
out as installed, so tools that walk the package's folder (import-linter, grimp) see every subpackage. Importing
``avzsl`` is cheap: nothing heavy (torch, h5py) is imported here.
"""

from avzsl.pipeline.core.version import package_version

__version__ = package_version()

__all__ = ["__version__"]
