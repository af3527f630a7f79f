import hashlib

import numpy as np
import soundfile as sf

from scoreaware.core.files import read_jsonl
from scoreaware.curate.loudness import window_loudness
from scoreaware.demo.synth import make_corpus, mood_of, plan_corpus, tags_of


def digest(root):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_corpus_is_deterministic(tmp_path):
    make_corpus(tmp_path / "a", clips=8, duration=3.0, seed=5)
    make_corpus(tmp_path / "b", clips=8, duration=3.0, seed=5)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_corpus_rendered_by_two_processes_is_the_same_bytes(tmp_path):
    """The demo renders with one process per core: every file (defects included), the metadata
    and the truth are identical to a one-process run, and progress sees every clip once."""
    seen = []
    specs = make_corpus(tmp_path / "one", clips=8, duration=3.0, seed=5)
    again = make_corpus(tmp_path / "two", clips=8, duration=3.0, seed=5, workers=2, progress=seen.append)
    assert digest(tmp_path / "one") == digest(tmp_path / "two")
    assert specs == again and sorted(s.id for s in seen) == sorted(s.id for s in specs)


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


def _band_energy(audio, low, high):
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(audio.size, 1 / 44100)
    return spectrum[(freqs >= low) & (freqs < high)].sum() / spectrum.sum()


def test_each_degradation_leaves_its_mark_and_grows_with_strength():
    from scoreaware.demo.synth import DEGRADATIONS, degrade, plan_corpus, render

    spec = next(s for s in plan_corpus(16, seed=3, degraded=0.0) if s.defect is None and s.genre == "ambient")
    clean = render(spec, 4.0, np.random.default_rng(0))
    mono = clean.mean(0)
    measures = {
        # what each degradation does, measured on the mono mix (larger = more degraded)
        "noise": lambda a: _band_energy(a, 12000, 22050),
        "clipping": lambda a: np.mean(np.abs(a) >= 0.999 * np.abs(a).max()),
        "lowpass": lambda a: -_band_energy(a, 3000, 22050),
        "hum": lambda a: _band_energy(a, 45, 55),
        "dropouts": lambda a: np.mean(np.abs(a) < 1e-9),
    }
    assert set(measures) == set(DEGRADATIONS)
    for kind, measure in measures.items():
        values = [measure(mono)] + [measure(degrade(clean, kind, s, np.random.default_rng(1)).mean(0))
                                    for s in (1, 2, 3)]
        assert values == sorted(values) and values[3] > values[0], (kind, values)


def test_planted_degradations_are_in_the_truth_and_not_in_the_metadata(tmp_path):
    specs = make_corpus(tmp_path, clips=16, duration=2.0, seed=4, degraded=0.5)
    truth = {row["id"]: row for row in read_jsonl(tmp_path / "truth.jsonl")}
    degraded = [s for s in specs if s.degradation]
    eligible = [s for s in specs if s.defect is None and s.caption_matches_audio]
    assert len(degraded) == round(0.5 * len(eligible))
    assert all(s.defect is None and s.caption_matches_audio for s in degraded)
    assert {truth[s.id]["degradation"] for s in degraded} >= {"noise", "clipping", "lowpass", "hum"}
    assert all(truth[s.id]["degradation_strength"] in (1, 2, 3) for s in degraded)
    metadata = (tmp_path / "metadata" / "captions.json").read_text() + (tmp_path / "metadata" /
                                                                        "autotagging.tsv").read_text()
    assert not any(word in metadata for word in ("noise", "clipping", "hum", "muffled", "dropout"))


def test_degradations_do_not_change_the_other_attributes():
    plain, damaged = plan_corpus(24, seed=2, degraded=0.0), plan_corpus(24, seed=2, degraded=0.4)
    for a, b in zip(plain, damaged):
        assert (a.genre, a.tempo, a.key, a.caption, a.defect) == (b.genre, b.tempo, b.key, b.caption, b.defect)


def test_a_share_of_mismatched_captions_can_be_asked_for_and_the_default_is_unchanged():
    default = plan_corpus(40, seed=0)
    assert [i for i, s in enumerate(default) if not s.caption_matches_audio] == [2, 10, 18, 26, 34]
    specs = plan_corpus(60, seed=0, mismatched=0.3)
    readable = [s for s in specs if s.defect is None]
    wrong = [s for s in readable if not s.caption_matches_audio]
    assert len(wrong) == round(0.3 * len(readable))
    unswapped = plan_corpus(60, seed=0, mismatched=0.0)  # every clip with its own caption
    assert all(s.caption_matches_audio for s in unswapped)
    own = {s.caption for s in unswapped}
    by_caption = {s.caption: s.genre for s in unswapped}
    for spec in wrong:  # each wrong caption is another clip's own, of another genre
        assert spec.caption in own and by_caption[spec.caption] != spec.genre
