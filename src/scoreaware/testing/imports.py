"""Which modules of the package fail to import in the running environment (each environment lacks
something: torchaudio in vllm's, pyarrow-needing datasets in laion's numpy<2)."""

import importlib
import pkgutil

import scoreaware


def unimportable_modules() -> list[str]:
    """'module: error' for every module of the package that does not import here."""
    failed = []
    for module in pkgutil.walk_packages(scoreaware.__path__, "scoreaware."):
        try:
            importlib.import_module(module.name)
        except Exception as exc:  # noqa: BLE001 - every failure is listed
            failed.append(f"{module.name}: {type(exc).__name__}: {exc}")
    return failed
