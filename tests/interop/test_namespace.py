"""One namespace: scoreaware installs only `scoreaware`, so well-known distributions keep their names.

Runs in `tox -e interop`, where Hugging Face's `evaluate` is installed beside a built wheel of ours
(not an editable tree): both must import, each from its own distribution.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata


def test_hugging_face_evaluate_and_scoreaware_import_side_by_side():
    evaluate = importlib.import_module("evaluate")
    assert hasattr(evaluate, "load"), "the `evaluate` found is not Hugging Face's"
    assert metadata.distribution("evaluate").read_text("METADATA") and "evaluate" in evaluate.__file__
    ours = importlib.import_module("scoreaware.core.errors")  # pure Python: no heavy dependency needed
    assert issubclass(ours.ManifestError, ours.StageError)
    import scoreaware

    assert scoreaware.__version__


def test_the_wheel_installs_only_the_scoreaware_package():
    top = {str(f).split("/")[0] for f in metadata.files("scoreaware") or []}
    packages = {name for name in top if not name.endswith(".dist-info") and not name.startswith("..")}
    assert packages == {"scoreaware"}, packages
    names = {str(f) for f in metadata.files("scoreaware") or []}
    for mapped in ("curate/stages/filter.py", "train/loop.py", "schemas/models.py"):  # the top-level folders
        assert f"scoreaware/{mapped}" in names, mapped
