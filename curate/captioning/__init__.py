"""Two-stage captioning: an audio-language model describes each segment, a text LLM rewrites it."""
