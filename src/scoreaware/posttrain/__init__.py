"""Post-training drivers: expert iteration, cross-load, CRPO."""
