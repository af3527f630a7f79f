"""The bottom layer: manifests, stage output, provenance, errors, arrays, checkpoints, schedule
math, executors and `run_stage`. It imports nothing above it."""
