"""Test helpers shared by the test suite (tiny cuts, recordings and audio files)."""
