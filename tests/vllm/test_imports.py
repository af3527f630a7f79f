"""Every module of the package imports in this environment (a module-level import of something
this environment lacks, torchaudio in vllm's or pyarrow-needing datasets in laion's numpy<2,
broke a whole suite once)."""

import importlib
import pkgutil

import scoreaware


def test_every_module_imports_here():
    failed = []
    for module in pkgutil.walk_packages(scoreaware.__path__, "scoreaware."):
        try:
            importlib.import_module(module.name)
        except Exception as exc:  # noqa: BLE001 - every failure is listed
            failed.append(f"{module.name}: {type(exc).__name__}: {exc}")
    assert failed == []
