"""The realistic embedded world: music21 works rendered by General MIDI instruments, with exact labels (docs/world.md)."""
