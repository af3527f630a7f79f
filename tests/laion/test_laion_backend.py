import numpy as np
import pytest
import torch
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.core.manifests import read_cuts
from scoreaware.curate.scoring.audio import mono_resampled, policy_windows
from scoreaware.curate.scoring.clap import load_clap


def test_laion_clap_imports_and_builds_offline(seeded_cache):
    import laion_clap

    module = laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-tiny", device="cpu")
    assert module.model.text_branch.config.hidden_size == 768


def test_checkpoint_loads_through_laion_load_ckpt_and_ours_alike(laion_checkpoint):
    import laion_clap

    reference = laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-tiny", device="cpu")
    reference.load_ckpt(str(laion_checkpoint))  # the real load_ckpt path (it deletes position_ids)
    encoder = load_clap("laion", str(laion_checkpoint), amodel="HTSAT-tiny")
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((2, 480_000))).astype(np.float32)
    theirs = reference.get_audio_embedding_from_data(x=audio, use_tensor=False)  # int16-quantized path
    ours = encoder.embed_audio(encoder.preprocessor(list(audio)))
    assert np.allclose(ours, theirs, atol=1e-5)
    texts = ["calm piano", "dark rock music with drums"]
    assert np.allclose(encoder.embed_text(texts), reference.get_text_embedding(texts), atol=1e-5)
    assert not np.allclose(*encoder.embed_text(texts))


def test_checkpoint_without_position_ids_still_loads(laion_checkpoint, tmp_path):
    blob = torch.load(laion_checkpoint, weights_only=False)
    del blob["state_dict"]["module.text_branch.embeddings.position_ids"]
    torch.save(blob, tmp_path / "no_pos.pt")  # laion_clap's load_ckpt raises KeyError on this
    a = load_clap("laion", str(tmp_path / "no_pos.pt"), amodel="HTSAT-tiny")
    b = load_clap("laion", str(laion_checkpoint), amodel="HTSAT-tiny")
    assert np.allclose(a.embed_text(["piano"]), b.embed_text(["piano"]))


def test_score_clap_cli_with_the_laion_backend(segmented4, laion_checkpoint, tmp_path):
    args = ["curate", "score", "clap", str(segmented4), "--backend", "laion", "--model", str(laion_checkpoint),
            "--amodel", "HTSAT-tiny", "--batch-size", "4"]
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    for out in (first, second):
        result = CliRunner().invoke(cli, [*args, "-o", str(out)])
        assert result.exit_code == 0, result.output
    a = {c.id: c.custom["clap_score"] for c in read_cuts(first)}
    b = {c.id: c.custom["clap_score"] for c in read_cuts(second)}
    assert a == b and all(-1 <= v <= 1 for v in a.values())
    cut = next(iter(read_cuts(first)))
    import laion_clap

    reference = laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-tiny", device="cpu")
    reference.load_ckpt(str(laion_checkpoint))
    (window,) = policy_windows(mono_resampled(cut, 48_000), 480_000, "center")
    padded = np.tile(window, 480_000 // len(window))
    padded = np.pad(padded, (0, 480_000 - len(padded)))[None]
    audio = reference.get_audio_embedding_from_data(x=padded, use_tensor=False)[0]
    text = reference.get_text_embedding([cut.custom["caption"], "x"])[0]
    assert cut.custom["clap_score"] == pytest.approx(float(audio @ text), abs=1e-5)
