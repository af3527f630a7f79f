"""What a mel front end leaves of the attributes the judge hears: renders of held-out works, round-tripped.

For each mel configuration, every clip goes log-mel → inverse mel → Griffin-Lim (the weightless
`mel` codec; the learned `mel-vae` adds its own loss on top of the front end it is trained on)
and the shipped judge hears the result. A front end whose round trip loses pitch caps any
generator decoded through it: the mode and key it can produce are at most what survives here.

    python benchmarks/world_codec.py [--clips 60] [--seed 302]
"""

from __future__ import annotations

import argparse
import json
import time

from scoreaware.demo.domain.build import DEFAULT_MODELS
from scoreaware.demo.domain.corpus import codec_round_trip
from scoreaware.demo.world.clips import rendered_clips
from scoreaware.demo.world.judge import measure_judge
from scoreaware.evaluate.judge import Judge
from scoreaware.train.codecs import MelCodec, MelCodecConfig

CONFIGS = {
    "renders (no codec)": None,
    "64 mels, n_fft 1024, 0-11 kHz (the shipped codec's front end)": MelCodecConfig(),
    "128 mels, n_fft 2048, 40-8000 Hz": MelCodecConfig(n_fft=2048, n_mels=128, f_min=40.0, f_max=8000.0),
    "160 mels, n_fft 2048, 30-8000 Hz": MelCodecConfig(n_fft=2048, n_mels=160, f_min=30.0, f_max=8000.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--seed", type=int, default=302)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    clips = rendered_clips(args.clips, args.seed, 10.0, "test")
    judge = Judge(DEFAULT_MODELS / "judge")
    rows = {}
    for name, config in CONFIGS.items():
        start = time.perf_counter()
        items = clips if config is None else [(s, codec_round_trip(a, MelCodec(config))) for s, a in clips]
        rows[name] = measure_judge(judge, items) | {"seconds": round(time.perf_counter() - start, 1)}
        if not args.json:
            r = rows[name]
            print(f"{name:<64} instrument {r['instrument']:.3f}  tempo band {r['tempo_band']:.3f}  mode "
                  f"{r['mode']:.3f}  key (related) {r['key_related']:.3f}   [{r['seconds']:.0f} s]", flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
