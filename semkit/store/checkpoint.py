"""A region search's saved state: an interrupted search resumes exactly where it stopped."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from .files import fingerprint, read_arrays, refuse, write_arrays


class Checkpoint:
    """The saved state of a region search (an .npz written whole, under a unique temporary name, then renamed)."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path, self.settings, self.fingerprint = path, settings, fingerprint(settings)

    def load(self) -> dict[str, np.ndarray] | None:
        try:
            arrays = read_arrays(self.path)
        except FileNotFoundError:
            return None
        except ValueError:  # truncated or damaged: the search starts again
            print(f"{self.path} is damaged; the search starts again", file=sys.stderr)
            return None
        if str(arrays.pop("fingerprint", "")) != self.fingerprint:
            refuse(self.path, None, self.settings)
        return arrays

    def save(self, arrays: dict[str, np.ndarray]) -> None:
        write_arrays(self.path, {"fingerprint": np.array(self.fingerprint), **arrays})
