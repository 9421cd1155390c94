"""Persistence for maps, region searches and studies: one path, "match, compute, lock, write".

Every stored result carries the settings it was made with and their
fingerprint; a store made with other settings (another function, network,
mesh, grid, criterion) is refused, never handed back. Files are written
whole or not at all, under a lock shared by concurrent writers.

* `.files`: fingerprints, matching and refusing, atomic writes, locks, datasets and arrays;
* `.journal`: a map's journal of finished chunks;
* `.checkpoint`: a region search's saved state;
* `.paper`: the paper's released maps and regions read as a map study and a region study;
* `.opening`: `semkit.open`, any of them as a Dataset.
"""

from .checkpoint import Checkpoint
from .files import (FORMATS, StoreError, check_format, claimed, differences, file_stem, fingerprint, locked, matching,
                    not_a_store, read_arrays, read_dataset, refuse, remove, settings_of, versioned,
                    write_arrays, write_bytes, write_dataset, writing)
from .journal import Journal
from .opening import open_result
from .paper import read_paper_regions

# The public part; the rest (locks, claims, atomic writes, journals, checkpoints) serves semkit's own modules.
__all__ = ["StoreError", "open_result", "read_paper_regions"]
