"""Token counting works offline: the shipped cl100k_base file, also under its upstream name."""

from __future__ import annotations

import tiktoken

from mlsd_bot import tokens


def test_count_and_truncate_use_the_offline_encoding():
    text = "Two-tower retrieval, then a DCN ranker over ~500 candidates."
    assert tokens.count(text) == len(tokens.encoding().encode(text))
    assert tokens.count(tokens.truncate(text * 20, 12)) <= 13  # 12 tokens plus the ellipsis


def test_seeded_cache_serves_cl100k_base_and_langchain_counts_tokens(tmp_path, monkeypatch):
    # The offline guard (conftest) makes any download attempt fail, so this passes only from the cache.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    tokens.seed_cache(tmp_path / "unused")  # an existing TIKTOKEN_CACHE_DIR wins
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # forget any encoding loaded earlier
    enc = tiktoken.get_encoding("cl100k_base")
    assert enc.encode("hello world") == tokens.encoding().encode("hello world")

    from langchain_openai import ChatOpenAI

    # gpt-4 and local models (llama3, qwen...) count with cl100k_base. (gpt-4o names ask for
    # o200k_base, which no offline package ships; mlsd-bot's own budget uses tokens.count instead.)
    for model in ("gpt-4", "llama3.1:8b"):
        llm = ChatOpenAI(model=model, api_key="sk-test", base_url="http://127.0.0.1:9/v1")
        assert llm.get_num_tokens("hello world") == 2
