import pytest

from scoreaware.curate.captioning.checks import caption_problems, clean


@pytest.mark.parametrize("text, expected", [
    ("An energetic rock track driven by distorted guitars and punchy drums.", []),
    ("", ["empty"]),
    ("  ...  ", ["empty"]),
    ("Generate a calm piano piece with soft strings.", ["instruction_like"]),
    ("Please create an upbeat jazz tune with brushed drums.", ["instruction_like"]),
    ("piano piano piano piano piano piano piano piano", ["repetitive"]),
    ("a calm a calm a calm a calm a calm a calm a calm", ["repetitive"]),
    ("Una pieza tranquila de piano con cuerdas suaves y un ritmo lento.", []),  # Latin letters pass
    ("Спокойная фортепианная пьеса с мягкими струнными.", ["not_english"]),
    ("calm", ["too_short"]),
    ("An energetic\x0b rock track with guitar", ["garbled"]),
    ("A calm � piano piece with soft strings", ["garbled"]),
    ("A ### calm $$$ piano ### piece @@@ with ~~~ strings ^^^", ["garbled"]),
    (" ".join(f"w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(120)), ["too_long"]),
])
def test_caption_problems(text, expected):
    assert caption_problems(text) == expected


def test_clean_strips_labels_and_quotes():
    assert clean('  "Caption:  A calm   ambient piece."  ') == "A calm ambient piece."
