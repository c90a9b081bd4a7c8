"""Reading the pickled files of other projects without executing pickled code.

Two released formats are pickles: the AVCA/TCAF/ClipClap class-name embedding files (``np.save`` of a Python dict
``{phrase: (D,) float32}``, i.e. a ``.npy`` file holding a 0-d object array whose payload is a pickle) and
ClipClap's per-class feature files (``pickle.dump`` of ``{"features": [...], "video_names": [...], "fps": [...]}``).
Unpickling runs whatever callables the stream names, so a plain ``pickle.load``/``np.load(allow_pickle=True)`` of a
downloaded file can run arbitrary code.

:class:`RestrictedUnpickler` resolves only an explicit allow-list of globals and refuses every other one with
:class:`ForbiddenPickleError` naming the file and the global, before anything is called. The numpy globals below
are exactly what numpy's own array pickling emits (measured with ``pickletools`` on the released files and on
files written by numpy 1.x and 2.x with protocols 2 to 5):

* ``numpy.core.multiarray._reconstruct`` (numpy 1.x name) / ``numpy._core.multiarray._reconstruct`` (2.x) with
  ``numpy.ndarray`` and ``numpy.dtype``: ``ndarray.__reduce__`` for protocols <= 4 (what ``np.save`` uses: 3);
* ``numpy.core.numeric._frombuffer`` / ``numpy._core.numeric._frombuffer``: ``ndarray.__reduce_ex__(5)``;
* ``numpy.core.multiarray.scalar`` / ``numpy._core.multiarray.scalar``: a numpy scalar (e.g. an ``np.float32``
  value in a dict);
* ``_codecs.encode``: how Python 3 writes ``bytes`` at protocol 2 (array buffers of protocol-2 files).

None of them can reach the file system, the interpreter or an import. Dicts, lists, tuples, str, bytes, ints and
floats need no global at all. Persistent ids are refused. After loading, callers still check the structure
(:func:`load_text_embedding_dict`), so an allowed-but-unexpected value (an object array, a string) is an error too.
"""

from __future__ import annotations

import io
import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy._core import multiarray as _multiarray
from numpy._core import numeric as _numeric

from avzsl.pipeline.core.errors import UserError

_logger = logging.getLogger(__name__)

# (module, name) as written in the pickle stream -> the object it resolves to. Both numpy spellings map to the
# numpy 2 objects, so files written by numpy 1.x load without importing the deprecated ``numpy.core`` alias.
NUMPY_ARRAY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy.core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): __import__("codecs").encode,
}


class ForbiddenPickleError(UserError):
    """A pickle names a global outside the allow-list (or is not a readable pickle); nothing was executed."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only ``allowed`` globals.

    Args:
        file: binary file positioned at the pickle stream.
        source: file name for error messages.
        allowed: ``{(module, name): object}``; default :data:`NUMPY_ARRAY_GLOBALS`.
    """

    def __init__(self, file: Any, source: str | Path, allowed: Mapping[tuple[str, str], Any] | None = None) -> None:
        # latin1: the encoding numpy documents for Python-2 array pickles; irrelevant for Python-3 streams.
        super().__init__(file, encoding="latin1")
        self.source = str(source)
        self.allowed = NUMPY_ARRAY_GLOBALS if allowed is None else allowed

    def find_class(self, module: str, name: str) -> Any:
        # Called for GLOBAL, STACK_GLOBAL and the EXT* opcodes, i.e. for every callable a pickle can name.
        try:
            return self.allowed[(module, name)]
        except KeyError:
            allowed = ", ".join(sorted(f"{m}.{n}" for m, n in self.allowed))
            raise ForbiddenPickleError(
                f"{self.source}: refused to unpickle the global {module}.{name} (this file may only hold numeric "
                f"arrays, strings and numbers; allowed globals: {allowed}); nothing from the file was executed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise ForbiddenPickleError(f"{self.source}: refused a pickle persistent id ({pid!r}); nothing was executed")


def restricted_loads(data: bytes, source: str | Path, allowed: Mapping[tuple[str, str], Any] | None = None) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; any other failure is a :class:`ForbiddenPickleError`."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), source, allowed).load()
    except ForbiddenPickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, UnicodeDecodeError) as exc:
        raise ForbiddenPickleError(f"{source}: not a readable pickle ({type(exc).__name__}: {exc})") from exc


def restricted_load_file(path: Path, allowed: Mapping[tuple[str, str], Any] | None = None) -> Any:
    """Read ``path`` and unpickle it with :class:`RestrictedUnpickler`."""
    path = Path(path)
    return restricted_loads(path.read_bytes(), path, allowed)


def load_npy(path: Path) -> np.ndarray:
    """``np.load`` of a ``.npy`` file, with object arrays unpickled by :class:`RestrictedUnpickler`.

    numpy writes an object array as the ``.npy`` header followed by ``pickle.dump(array)``; that stream is read
    here with the allow-list instead of ``allow_pickle=True``. Non-object arrays are read with
    ``allow_pickle=False``.

    Returns:
        The array (a 0-d object array for ``np.save`` of a dict; use ``.item()``).
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:  # (3, 0): utf8 field names; same header layout as 2.0
                shape, fortran, dtype = np.lib.format._read_array_header(f, version)
            if not dtype.hasobject:
                f.seek(0)
                return np.load(f, allow_pickle=False)
            payload = f.read()
    except (ValueError, EOFError) as exc:
        raise ForbiddenPickleError(f"{path}: not a readable .npy file ({exc})") from exc
    array = restricted_loads(payload, path)
    if not isinstance(array, np.ndarray):
        raise ForbiddenPickleError(f"{path}: the .npy payload is a {type(array).__name__}, not an array")
    if array.shape != tuple(shape):
        raise ForbiddenPickleError(f"{path}: header says shape {tuple(shape)}, payload has {array.shape}")
    return array


def as_float_vector(value: Any, what: str) -> np.ndarray:
    """``value`` as a 1-D float32 vector, refusing non-numeric content (object, string, bool arrays)."""
    if isinstance(value, np.generic | float | int) and not isinstance(value, bool | np.bool_):
        value = np.asarray([value])
    if not isinstance(value, np.ndarray | list | tuple):
        raise ForbiddenPickleError(f"{what}: expected a numeric vector, found {type(value).__name__}")
    array = np.asarray(value)
    if array.dtype.kind not in "fiu" or array.size == 0:
        raise ForbiddenPickleError(f"{what}: expected a non-empty numeric vector, found dtype {array.dtype} "
                                   f"shape {array.shape}")
    return array.astype(np.float32).reshape(-1)


def load_text_embedding_dict(path: Path) -> dict[str, np.ndarray]:
    """The released class-name embedding file (``np.save`` of ``{phrase: (D,) float}``), without pickle execution.

    Returns:
        ``{phrase: (D,) float32}`` in file order.

    Raises:
        ForbiddenPickleError: the file names a global outside the allow-list, is not a ``.npy`` dict of str to
            numeric vectors, or the vectors differ in length; the message names the file.
    """
    path = Path(path)
    array = load_npy(path)
    obj = array.item() if array.dtype == object and array.shape == () else array
    if not isinstance(obj, dict) or not obj:
        raise ForbiddenPickleError(f"{path}: expected a non-empty dict {{class phrase: vector}}, found "
                                   f"{type(obj).__name__}")
    out: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise ForbiddenPickleError(f"{path}: dict keys must be class phrases (str), found {type(key).__name__}")
        out[key] = as_float_vector(value, f"{path}: entry {key!r}")
    dims = {v.shape[0] for v in out.values()}
    if len(dims) != 1:
        raise ForbiddenPickleError(f"{path}: embedding vectors differ in length: {sorted(dims)}")
    return out
