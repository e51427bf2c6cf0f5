"""JSON: the whole transcript, re-importable with ``interviewer report`` (``report.transcript.load_transcript``)."""

from __future__ import annotations

import json

from interviewer.report.exporters import register
from interviewer.report.transcript import Transcript


@register("json", "json", "下载 JSON", order=10)
def to_json(t: Transcript) -> str:
    return json.dumps(t.model_dump(mode="json"), ensure_ascii=False, indent=2)
