"""The realistic embedded world: music21 works played by General MIDI instruments (docs/world.md)."""
