"""Text conditioning: a frozen sentence encoder giving per-token features and masks, and its embedding cache."""

from camworld.text.cache import TextEmbeddingCache
from camworld.text.encoder import TextEncoder, bundled_minilm_path

__all__ = ["TextEmbeddingCache", "TextEncoder", "bundled_minilm_path"]
