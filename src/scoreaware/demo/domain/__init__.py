"""Small models trained on the synthetic corpus: the embedded default (`scoreaware demo train-models`)."""
