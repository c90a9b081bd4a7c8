"""Real malicious pickle payloads: unpickling one creates a marker directory (``os.mkdir``)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path


class MakeMarker:
    """Pickles as ``os.mkdir(marker)``: whoever unpickles it runs that call."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


class EvalMarker:
    """Pickles as ``builtins.eval(...)`` creating the marker: a second, different global."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (eval, (f"__import__('os').mkdir({self.marker!r})",))


def assert_payload_is_live(tmp_path: Path, factory: type = MakeMarker) -> None:
    """Control: plain ``pickle.loads`` of the payload does create its marker (so the refusal tests can fail)."""
    control = tmp_path / f"control-{factory.__name__}"
    pickle.loads(pickle.dumps(factory(control)))
    assert control.is_dir(), "the payload did not run under plain pickle; the safety tests would prove nothing"
    control.rmdir()
