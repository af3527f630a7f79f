"""scoreaware: score-aware data curation and training for text-to-music.

Layers, bottom to top (checked by `lint-imports`): `core` (manifests, stage output, provenance,
errors, executors, `run_stage`) < `schemas` (pandera models) < `curate` (stages and their runners)
< `train` < `evaluate` < `posttrain` (expert iteration, cross-load, CRPO) < `demo` (the embedded
default) < `cli` (the `scoreaware` console script: thin click commands).
"""

__version__ = "0.1.0"
