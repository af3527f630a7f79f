"""`demo train-models` itself, with recipes small enough for a test (the numbers mean nothing)."""

import json

import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from scoreaware.cli.main import cli
from scoreaware.curate.scoring.clap import load_clap
from scoreaware.curate.scoring.reward import load_reward


def test_train_models_builds_every_part_and_records_its_numbers(tmp_path):
    out = tmp_path / "models"
    result = CliRunner().invoke(cli, ["demo", "train-models", "-o", str(out), "--quick", "--eval-clips", "14"])
    assert result.exit_code == 0, result.output
    record = first = json.loads((out / "MODELS.json").read_text())
    assert set(record["recipes"]) == {"mert", "clap", "reward", "captioners", "codec"}
    assert {"clap", "reward", "captioners", "codec"} <= set(record["targets"])
    assert 0 <= record["targets"]["clap"]["auroc"] <= 1 and record["total_mb"] > 0
    for folder in ("clap", "mert", "qwen2_audio", "qwen2", "codec"):
        assert (out / folder / "config.json").is_file(), folder
    assert load_reward(out / "reward.pt").prompt_protocol == "caption"
    assert load_clap("transformers", str(out / "clap")).dim == 128
    assert "demo train-models" in result.output and "AUROC" in result.output
    # retraining one part keeps the others and their record
    again = CliRunner().invoke(cli, ["demo", "train-models", "-o", str(out), "--quick", "--only", "reward",
                                     "--eval-clips", "14", "--json"])
    assert again.exit_code == 0, again.output
    record = json.loads(again.stdout)
    # the folder's command rebuilds everything; the retrained part records its own
    assert record["recipes"]["reward"]["command"].endswith("--only reward")
    assert set(record["recipes"]) == {"mert", "clap", "reward", "captioners", "codec"}
    # only what the retrained reward affects is re-measured (the codec's targets use the reward)
    assert record["targets"]["captioners"] == first["targets"]["captioners"]
    assert record["targets"]["codec"]["clips"] == 14
    # the codec, captioners and reward are stored in float16, the CLAP and MERT the reward read stay float32
    halved = {p for p, r in record["recipes"].items() if r.get("stored") == "float16"}
    assert halved == {"reward", "captioners", "codec"}
    assert {v.dtype for v in load_file(out / "qwen2" / "model.safetensors").values()} == {torch.float16}
    assert torch.float32 in {v.dtype for v in load_file(out / "clap" / "model.safetensors").values()}
    # --measure-only trains nothing: the weights stay byte for byte, their targets are measured again
    weights = {p: p.read_bytes() for p in out.rglob("*.safetensors")}
    measured = CliRunner().invoke(cli, ["demo", "train-models", "-o", str(out), "--only", "captioners",
                                        "--measure-only", "--eval-clips", "14", "--json"])
    assert measured.exit_code == 0, measured.output
    assert {p: p.read_bytes() for p in out.rglob("*.safetensors")} == weights
    assert json.loads(measured.stdout)["recipes"] == record["recipes"]
    assert json.loads(measured.stdout)["targets"]["captioners"]["clips"] == 14


def test_unknown_part_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "train-models", "-o", str(tmp_path), "--only", "vae"])
    assert result.exit_code == 2 and "'vae'" in result.output


def test_a_widened_audio_window_captions_a_short_clip_as_before(tmp_path):
    """A Qwen2-Audio trained on 10 s, widened to the released 30 s window (what vLLM loads):
    for a 10 s clip the padding and the new positions are masked out, so the LM gets the same
    audio tokens; the only change is the STFT's last frame (reflect vs zero padding)."""
    import numpy as np
    import torch

    from scoreaware.demo.tiny_models import build_qwen2_audio, make_chat_tokenizer, widen_audio_window

    tokenizer = make_chat_tokenizer(tmp_path / "tok")
    torch.manual_seed(0)
    model, processor = build_qwen2_audio(tokenizer, audio_seconds=10)
    model.eval()
    clip = 0.3 * np.sin(2 * np.pi * 440 * np.arange(160_000) / 16_000).astype(np.float32)  # 10 s at 16 kHz
    text = "<|audio_bos|><|AUDIO|><|audio_eos|>describe"

    def run(inputs):
        with torch.no_grad():
            return model(**inputs).logits[0]  # (tokens, vocab)

    short = processor(text=text, audio=[clip], sampling_rate=16_000, return_tensors="pt")
    before = run(short)
    widen_audio_window(model, processor, seconds=30, seed=1)
    wide = processor(text=text, audio=[clip], sampling_rate=16_000, return_tensors="pt")
    assert (short["input_features"].shape[-1], wide["input_features"].shape[-1]) == (1000, 3000)
    assert model.config.audio_config.max_source_positions == 1500
    assert torch.equal(wide["input_features"][..., :999], short["input_features"][..., :999])
    # the same 1000 frames padded to 30 s with the zeros the 10 s encoder's convolutions pad with:
    # the masked padding and the new positions ≥ 500 change nothing
    same = dict(wide, input_features=torch.zeros_like(wide["input_features"]))
    same["input_features"][..., :1000] = short["input_features"]
    assert torch.allclose(run(same), before, atol=1e-5)
    after = run(wide)  # as served: the last frames' convolutions see the extractor's padding value
    assert after.shape == before.shape and torch.equal(after.argmax(-1), before.argmax(-1))
