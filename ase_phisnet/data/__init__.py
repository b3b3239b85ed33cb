"""Reference-data pipeline: sample geometries, label them with PySCF, store, import, split.

The pieces, each usable from Python and from ``phisnet data ...``:

* :func:`get_molecule` (names or geometry files) and :mod:`.sample` (GFN2-xTB MD or
  normal-mode sampling) make geometries;
* :func:`label_frame` / :func:`~.label.label_dataset` label them with PySCF (RKS or RHF);
* :class:`FrameStore` keeps one crash-safe ``.npz`` file per frame; :func:`merge` joins shards;
* :func:`import_h5` reads the shared HDF5 reference sets;
* :func:`make_splits` makes seeded train/val/test splits of frame indices.

Heavy dependencies (PySCF, tblite, h5py) are imported only when used.
"""

from .importer import import_h5
from .label import label_frame
from .merge import merge
from .molecules import get_molecule
from .splits import make_splits
from .store import FrameStore

__all__ = ["FrameStore", "merge", "label_frame", "get_molecule", "make_splits", "import_h5"]
