"""A child run matches its parent's spaces by value, or a local model by its content digest."""

import pytest

from scoreaware.train.inherit import check_inheritance, same_encoding

CODEC = {"codec": "mel-vae", "model": "/a/world_codec", "sample_rate": 22050, "hop": 4, "channels": 64}


def info(t5="/a/t5", t5_digest="d1", codec=CODEC, codec_digest="c1", **more):
    return {"text_encoder": t5, "codec": codec, "text_dim": 32, "clap_model": "/a/clap", "clap_weights": "f",
            "model_sha256": {"text_encoder": t5_digest, "codec.model": codec_digest, "clap_model": "k"}, **more}


def test_the_same_model_at_another_path_is_the_same_space():
    parent = {"encode": info(t5="t5")}  # the shipped base names its T5 stand-in; the demo rebuilds it elsewhere
    check_inheritance(parent, info(t5="/a/demo/models/t5"), "m.jsonl.gz")
    moved_codec = {**CODEC, "model": "/elsewhere/world_codec"}
    assert same_encoding("codec", info(), info(codec=moved_codec))


@pytest.mark.parametrize("child, field", [
    (info(t5="/b/t5", t5_digest="d2"), "text_encoder"),  # another model at another path
    (info(t5="/b/t5", t5_digest=None), "text_encoder"),  # no digest to vouch for it
    (info(codec={**CODEC, "model": "/b/codec"}, codec_digest="c2"), "codec"),  # the codec's weights differ
    (info(codec={**CODEC, "hop": 8}), "codec"),  # same weights, other settings
    (info(text_dim=16), "text_dim"),
])
def test_another_space_is_refused_with_the_field_named(child, field):
    with pytest.raises(ValueError, match=f"encoded differently.*{field}"):
        check_inheritance({"encode": info()}, child, "m.jsonl.gz")
