"""Training from curated manifests (latents, FluxAudio-style DiT, objectives, sampling)."""
