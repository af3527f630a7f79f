"""Everything that exists for the embedded default: the synthetic corpus, tiny stand-in models,
the domain models and their training, the truth checks and the end-to-end demo pipeline."""
