"""Caption generation throughput: vLLM batched generation vs sequential transformers `generate`.

Same tiny random-init Qwen2 (hidden 128, 2 heads of 64, 1 layer; built locally), same
chat-templated rewrite prompts, same sampling (temperature 0.7, top-p 0.95, per-request
seeds), same number of new tokens: the pipeline's `VllmEngine` (one `LLM.generate` over the
batch, continuous batching) against its `TransformersEngine` (one `model.generate` per prompt,
the usual loop). Engine start-up (vLLM compiles its graph) is excluded; vLLM's first
full-batch call, which compiles kernels for new batch shapes, is reported apart from the
steady state that a long captioning run sees.
On a GPU with a 7B model vLLM's advantage grows (batching keeps the GPU busy; published
vLLM numbers are one to two orders of magnitude over sequential HF generate).

Run in the vllm environment:  tox -e bench-vllm   (or python benchmarks/caption.py there)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from scratch import workdir_or_scratch  # noqa: E402


def timed(engine, requests, sampling) -> tuple[float, int]:
    """(seconds, generated tokens) of one `engine.generate` call; every request must succeed."""
    start = time.perf_counter()
    out = engine.generate(requests, sampling)
    seconds = time.perf_counter() - start
    failed = [o for o in out if not isinstance(o, str)]
    assert not failed, failed[0]
    return seconds, sum(len(engine.tokenizer(text)["input_ids"]) for text in out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()

    from scoreaware.curate.captioning.engines import ChatRequest, SamplingConfig, TransformersEngine, VllmEngine
    from scoreaware.demo.tiny_models import make_tiny_qwen2

    model = make_tiny_qwen2(workdir_or_scratch(None, "bench-caption-") / "qwen2")
    from scoreaware.curate.stages.caption import TEMPLATES as template
    system = (template / "rewrite_system.txt").read_text().strip()
    user = (template / "rewrite_user.txt").read_text().strip()
    requests = [ChatRequest(f"cut{i}", system, user.format(caption_verbose=f"A slow ambient piece number {i} with "
                                                          "warm pads, soft piano and a distant choir.",
                                                          tags="genre: ambient, mood/theme: calm"))
                for i in range(args.prompts)]
    sampling = SamplingConfig(max_tokens=args.tokens, temperature=0.7, top_p=0.95, seed=0)

    start = time.perf_counter()
    vllm_engine = VllmEngine(str(model), max_model_len=1024)
    vllm_start = time.perf_counter() - start
    vllm_first, _ = timed(vllm_engine, requests, sampling)  # the first call of each batch shape compiles kernels
    vllm_s, vllm_tokens = timed(vllm_engine, requests, sampling)

    hf = TransformersEngine(str(model))
    timed(hf, requests[:2], sampling)  # warm-up
    hf_s, hf_tokens = timed(hf, requests, sampling)

    print(f"{args.prompts} prompts, up to {args.tokens} new tokens each, tiny Qwen2 on CPU "
          f"(vLLM start-up {vllm_start:.0f} s, excluded)")
    print(f"{'transformers generate (sequential)':>36}: {args.prompts / hf_s:8.1f} prompts/s  "
          f"({hf_tokens / hf_s:8.0f} tokens/s)")
    print(f"{'vLLM LLM.generate (batched)':>36}: {args.prompts / vllm_s:8.1f} prompts/s  "
          f"({vllm_tokens / vllm_s:8.0f} tokens/s)")
    print(f"{'vLLM first call (compiles shapes)':>36}: {args.prompts / vllm_first:8.1f} prompts/s")
    print(f"ratio {hf_s / vllm_s:.1f}× prompts/s steady state, {hf_s / vllm_first:.1f}× on the first call "
          "(target ≥ 5× on this CPU)")


if __name__ == "__main__":
    main()
