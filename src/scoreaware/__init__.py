"""scoreaware: score-aware data curation and training for text-to-music.

The packages: `curate` (curation stages and their CLI), `schemas` (pandera models of the
manifests), `train` (training from curated manifests). This package holds the `scoreaware`
console script and the demo pipeline.
"""

__version__ = "0.1.0"
