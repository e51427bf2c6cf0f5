"""Per-token KV sizes of named models (``knowledge/kv_sizes.yaml``): what a candidate's "Llama-2-7B 每 token 256 KiB"
is checked against, with the slips that explain a wrong figure (a forgotten factor 2, query heads for KV heads)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from interviewer.knowledge.bank import compile_all, load_list
from interviewer.resources import KNOWLEDGE_DIR


class ModelKV(BaseModel):
    """One model's per-token KV cache in bytes (16-bit elements), with its source."""

    model: str
    names: Annotated[str, AfterValidator(lambda p: compile_all([p])[0])] = Field(description="regex naming the model (case-insensitive)")
    bytes: int = Field(gt=0)
    source: str
    slips: dict[str, float] = Field(min_length=1, description="slip → stated / right, e.g. 少乘了一个 2: 0.5")


@lru_cache(maxsize=2)
def load_kv_sizes(path: Path | None = None) -> tuple[ModelKV, ...]:
    """The registry, or () when the file is missing (grading goes on without this check)."""
    path = path or KNOWLEDGE_DIR / "kv_sizes.yaml"
    return tuple(load_list(path, ModelKV, "model")) if path.exists() else ()
