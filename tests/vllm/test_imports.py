"""Every module of the package imports in the vllm environment (a module-level import of something
it lacks once broke a whole suite)."""

from scoreaware.testing.imports import unimportable_modules


def test_every_module_imports_here():
    assert unimportable_modules() == []
