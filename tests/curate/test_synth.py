import hashlib

import numpy as np
import soundfile as sf

from curate.io import read_jsonl
from curate.loudness import window_loudness
from curate.synth import make_corpus, mood_of, plan_corpus, tags_of


def digest(root):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_corpus_is_deterministic(tmp_path):
    make_corpus(tmp_path / "a", clips=8, duration=3.0, seed=5)
    make_corpus(tmp_path / "b", clips=8, duration=3.0, seed=5)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_plan_plants_every_defect_and_some_mismatched_captions():
    specs = plan_corpus(40, seed=0)
    defects = sorted(s.defect for s in specs if s.defect)
    assert defects == ["near_silent", "near_silent", "not_audio", "silent_middle", "truncated"]
    assert 3 <= sum(not s.caption_matches_audio for s in specs) <= 6
    assert len({s.genre for s in specs}) == 7 and {s.channels for s in specs} == {1, 2}
    assert {s.path.rsplit(".", 1)[1] for s in specs} == {"mp3", "flac", "wav"}


def test_captions_and_tags_follow_the_attributes():
    for spec in plan_corpus(16, seed=1):
        assert spec.mood == mood_of(spec.mode, spec.tempo)
        tags = tags_of(spec)
        assert f"genre---{spec.genre}" in tags and f"mood/theme---{spec.mood}" in tags
        if spec.caption_matches_audio:
            assert spec.genre in spec.caption and str(spec.tempo) in spec.caption


def test_audio_has_the_planned_loudness_and_format(tiny_corpus):
    for row in read_jsonl(tiny_corpus / "truth.jsonl"):
        if row["defect"] in ("truncated", "not_audio"):
            continue
        audio, sr = sf.read(tiny_corpus / "audio" / row["path"], dtype="float32", always_2d=True)
        assert sr == 44100 and audio.shape[1] == row["channels"]
        assert np.abs(audio).max() <= 1.0
        lufs = window_loudness(audio.T, sr, [(0, audio.shape[0])])[0]
        if row["defect"] is None:
            assert abs(lufs - row["lufs"]) < 0.5, row["path"]  # lossy mp3 and 16-bit files
            assert abs(lufs - row["target_lufs"]) < 3.0, row["path"]  # the soft limiter
        elif row["defect"] == "near_silent":
            assert lufs < -60
