"""Experiments: arms that change one thing from a base, run over training seeds and compared with
the prompt as the statistical unit (`experiment run EXP.toml`)."""
