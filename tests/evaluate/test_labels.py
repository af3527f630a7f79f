"""Zero-shot labels heard in a scored run, against planted embeddings whose answer is known."""

import numpy as np
from lhotse import CutSet, MonoCut
from lhotse.features.io import NumpyFilesWriter

from scoreaware.curate.scoring.clap import load_transformers_clap
from scoreaware.evaluate.labels import label_accuracy, label_hits

LABELS = ["rock", "jazz", "folk"]


def planted_run(folder, clap, heard: list[tuple[str, str]]):
    """A run whose clip i was prompted for heard[i][0] and carries the CLAP text embedding of
    heard[i][1] as its audio embedding: the nearest class is heard[i][1] by construction."""
    texts = load_transformers_clap(str(clap)).embed_text([f"{label} music" for label in LABELS])
    (folder / "eval").mkdir(parents=True)
    writer = NumpyFilesWriter(folder / "eval" / "clap.arrays")
    cuts = []
    for i, (prompted, planted) in enumerate(heard):
        embedding = texts[LABELS.index(planted)].astype(np.float32)
        cuts.append(MonoCut(f"clip{i}", 0.0, 1.0, 0, custom={
            "prompt_id": prompted, "clap_audio_emb": writer.store_array(f"clip{i}", embedding)}))
    # a clip whose prompt id is no class is left out, not counted as a miss
    cuts.append(MonoCut("other", 0.0, 1.0, 0, custom={
        "prompt_id": "p9", "clap_audio_emb": writer.store_array("other", texts[0].astype(np.float32))}))
    CutSet.from_cuts(cuts).to_file(folder / "eval" / "clap.jsonl.gz")
    return folder


def test_accuracy_and_per_label_counts_match_the_planted_answers(tmp_path, tiny_clap):
    heard = [("rock", "rock"), ("rock", "rock"), ("rock", "jazz"),
             ("jazz", "jazz"), ("jazz", "folk"), ("folk", "folk")]
    run = planted_run(tmp_path / "run", tiny_clap, heard)
    found = label_accuracy(run, str(tiny_clap), LABELS)
    assert found["clips"] == 6 and found["hits"] == 4
    assert found["accuracy"] == 4 / 6 and found["chance"] == 1 / 3
    assert found["per_label"] == {"rock": [2, 3], "jazz": [1, 2], "folk": [1, 1]}
    assert label_hits(run, str(tiny_clap), LABELS) == {"clip0": True, "clip1": True, "clip2": False,
                                                       "clip3": True, "clip4": False, "clip5": True}


def test_a_class_without_clips_is_not_listed_and_no_clips_is_no_rate(tmp_path, tiny_clap):
    run = planted_run(tmp_path / "run", tiny_clap, [("jazz", "rock")])
    assert label_accuracy(run, str(tiny_clap), LABELS)["per_label"] == {"jazz": [0, 1]}
    empty = planted_run(tmp_path / "empty", tiny_clap, [])
    found = label_accuracy(empty, str(tiny_clap), LABELS)
    assert found["clips"] == 0 and found["accuracy"] is None and found["per_label"] == {}
