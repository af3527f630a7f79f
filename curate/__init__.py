"""Curation stages (library functions first) and their `scoreaware curate` commands."""
