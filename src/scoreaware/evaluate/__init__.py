"""Evaluation of generated music: FAD-CLAP, CLAP score, reward, MAD, KAD and the per-stage table.

Metrics are computed the way the ATTM challenge systems compute them (one CLAP vector per clip,
a deterministic crop, the Fréchet distance with the real part of the matrix square root); the
scorers are `curate.scoring`'s, never a copy of them.
"""
