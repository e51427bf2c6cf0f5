"""Topics and ladders: how each topic is named to the candidate (``knowledge/topics.yaml``), the extra
``/harder`` ladders (one file each in ``knowledge/ladders/``), and the reverse stage's authored answers
(``knowledge/reverse_faq.yaml``).

A ladder is a list of target ids (``question_id`` or ``question_id/fN``) climbed one level per request; the
step's level is its difficulty. Adding a ladder is adding one YAML file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field

from interviewer.knowledge.bank import KnowledgeError, Patterns, Question, Text, load_list, read_yaml, validation_message
from interviewer.resources import KNOWLEDGE_DIR


class Topic(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    label: Text


class Ladder(BaseModel):
    """Harder questions for ``/harder <command>``, easiest first."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    command: str = Field(pattern=r"^[a-z0-9_]+$", description="the word after /harder that climbs it")
    label: Text
    topics: list[str] = Field(default_factory=lambda: ["all"], description="topics during which it is offered")
    steps: list[str] = Field(min_length=1)

    def check_against(self, bank: dict[str, Question]) -> None:
        for step in self.steps:
            qid, _, rest = step.partition("/")
            q = bank.get(qid)
            ok = q is not None and (not rest or (rest[:1] == "f" and rest[1:].isdigit() and 1 <= int(rest[1:]) <= len(q.follow_ups)))
            if not ok:
                raise KnowledgeError(f"ladder '{self.id}': step '{step}' is not a question or follow-up of the bank")


class ReverseAnswer(BaseModel):
    """An authored answer to a process question of the reverse stage (``knowledge/reverse_faq.yaml``)."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    patterns: Patterns
    answer: Text


def load_reverse_faq(path: Path | None = None) -> list[ReverseAnswer]:
    return load_list(path or KNOWLEDGE_DIR / "reverse_faq.yaml", ReverseAnswer, "reverse answer")


@lru_cache(maxsize=1)
def default_reverse_faq() -> tuple[ReverseAnswer, ...]:
    return tuple(load_reverse_faq())


def load_topics(path: Path | None = None) -> dict[str, Topic]:
    return {t.id: t for t in load_list(path or KNOWLEDGE_DIR / "topics.yaml", Topic, "topic")}


def load_ladders(directory: Path | None = None) -> dict[str, Ladder]:
    """Every ladder file, by ladder id."""
    ladders: dict[str, Ladder] = {}
    for path in sorted((directory or KNOWLEDGE_DIR / "ladders").glob("*.yaml")):
        data = read_yaml(path)
        try:
            ladder = Ladder.model_validate(data)
        except Exception as exc:  # noqa: BLE001 - a ValidationError, named with its file
            raise KnowledgeError(validation_message(path, data, exc, "ladder") if hasattr(exc, "errors") else f"{path.name}: {exc}") from exc
        ladders[ladder.id] = ladder
    return ladders


def ladder_for(command: str, topic: str, ladders: dict[str, Ladder] | None = None) -> tuple[Ladder | None, Ladder | None]:
    """(the ladder of ``command`` for ``topic``, the general one for every topic); either may be None."""
    ladders = default_ladders() if ladders is None else ladders
    own = next((lad for lad in ladders.values() if lad.command == command and topic in lad.topics), None)
    general = next((lad for lad in ladders.values() if lad.command == command and "all" in lad.topics), None)
    return own or general, general if own else None


@lru_cache(maxsize=1)
def default_topics() -> dict[str, Topic]:
    return load_topics()


@lru_cache(maxsize=1)
def default_ladders() -> dict[str, Ladder]:
    return load_ladders()


def topic_label(topic: object, lang: str = "zh") -> str:
    """The name a candidate sees for a topic id (the id itself for a topic not in the file)."""
    try:
        t = default_topics().get(str(topic or ""))
    except KnowledgeError:  # a broken topics file must not break a report
        t = None
    return t.label.get(lang) if t else str(topic or "")


FAMILY = {  # topics that share material (an answer about one may rightly cover the other) are one family
    "kv_cache": "memory", "paged_attention": "memory", "long_context": "memory", "continuous_batching": "scheduling",
    "chunked_prefill": "scheduling", "pd_disaggregation": "scheduling", "serving": "scheduling", "vllm_practice": "scheduling",
    "flash_attention": "attention", "parallelism": "parallel", "speculative_decoding": "speculation", "memory_bound": "hardware",
    "quantization": "hardware", "cuda_graph": "hardware", "ksanallm": "ksana", "moe_ep": "parallel", "mla": "attention",
    "gpu_fundamentals": "hardware", "hardware": "hardware", "sampling": "speculation", "multi_lora": "scheduling"}


def family_of(topic: str) -> str:
    """The family a topic belongs to (itself when it has none)."""
    return FAMILY.get(topic, topic)
