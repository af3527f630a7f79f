"""Scoring models: CLAP audio-text alignment and a TuneJury-compatible preference reward."""
