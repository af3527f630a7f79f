"""`scoreaware demo`: the embedded default corpus, its models, and the end-to-end demo pipeline."""

from scoreaware.demo.commands import demo

__all__ = ["demo"]
