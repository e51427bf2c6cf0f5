"""Numeric questions with fresh configurations: each ``numeric.fresh`` variant of a question becomes a question of
its own (``<id>_<variant id>``), so a candidate can drill the same computation again on another model or card.

The variant keeps the authored method, rubric, factors and notes; its text, reference answer and the result point
are filled in from the template with the variant's inputs and the value the formula computes — never typed by
hand, so a variant cannot carry a wrong number. Every variant names the source of its configuration.
"""

from __future__ import annotations

from interviewer.knowledge.bank import KeyPoint, KnowledgeError, Question, Text


def _fill(template: str, values: dict[str, object], where: str) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise KnowledgeError(f"{where}: template field {exc} is not a variant input, label or result") from exc


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def variants_of(q: Question) -> list[Question]:
    """The generated questions of ``q`` (none when it has no fresh configurations)."""
    from interviewer.quantities import format_quantity

    fresh = q.numeric.fresh if q.numeric else None
    if fresh is None:
        return []
    out = []
    for v in fresh.variants:
        inputs = {**q.numeric.inputs, **v.inputs}
        check = q.numeric.model_copy(update={"inputs": inputs, "fresh": None})
        try:
            result = format_quantity(check.expected, check.dimension)
        except (TypeError, ValueError) as exc:
            raise KnowledgeError(f"question '{q.id}' variant '{v.id}': {check.formula}({inputs}) fails: {exc}") from exc
        where = f"question '{q.id}' variant '{v.id}'"
        binary = f"{check.expected / 2**30:.3g} GiB" if check.dimension == "bytes" else result
        text = {lang: {**{k: _number(x) for k, x in inputs.items()}, "label": v.label.get(lang), "result": result,
                       "result_gib": binary, "source": v.source} for lang in ("zh", "en")}
        value = next(p for p in q.rubric if p.id == check.point)
        said = f"{binary}（{result}）" if binary != result else result
        point = KeyPoint(id=value.id, point=f"结果：约 {said}", point_en=f"Result: about {said}", weight=value.weight,
                         keywords=[sorted({result, result.replace(" ", ""), binary, binary.replace(" ", "")})], phrasings=[],
                         note=value.note, probe=value.probe)
        out.append(q.model_copy(update={
            "id": f"{q.id}_{v.id}", "variant_of": q.id, "numeric": check, "tags": [*q.tags, "variant"],
            "question": Text(zh=_fill(fresh.question.zh, text["zh"], where), en=_fill(fresh.question.en, text["en"], where)),
            "reference_answer": Text(zh=_fill(fresh.reference.zh, text["zh"], where),
                                     en=_fill(fresh.reference.en, text["en"], where)),
            "rubric": [point if p.id == check.point else p for p in q.rubric]}))
    return out


def with_variants(bank: dict[str, Question]) -> dict[str, Question]:
    """The bank with every variant question added after its authored one."""
    out: dict[str, Question] = {}
    for qid, q in bank.items():
        out[qid] = q
        for v in variants_of(q):
            if v.id in bank or v.id in out:
                raise KnowledgeError(f"question '{qid}': variant id '{v.id}' is already a question")
            out[v.id] = v
    return out
