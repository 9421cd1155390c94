"""What several benchmark scripts share: the repository's root, the ShapeNet sample and the benchmark mesh.

Its own module so that scripts import it rather than each other (run.py includes guarantees.py's section, and
guarantees.py, run alone, measures the same mesh).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPENET = Path(os.environ.get("SEMKIT_SHAPENET", ROOT.parent / "shared" / "data" / "shapenet-sample"))
#: A real ShapeNet bench (21,952 faces), ImageNet class 703 (park bench).
MESH = SHAPENET / "bench" / "50cdaa9e33fc853ecb2a965e75be701c" / "models" / "model_normalized.obj"
