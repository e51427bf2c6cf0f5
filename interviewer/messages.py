"""Everything the interviewer says to the candidate that is not a question from the bank, in zh and en.

One catalogue instead of inline language switches: ``say(key, lang, **values)``. A missing key or value is
a programming error and raises at once.
"""

from __future__ import annotations

CATALOGUE: dict[str, dict[str, str]] = {
    # engine: ingest
    "answer_cut": {"zh": "回答太长（{length} 字），只保留并评分前 {kept} 字。",
                   "en": "Your answer was too long ({length} characters); only the first {kept} were kept and graded."},
    "interview_over": {"zh": "面试已经结束，可以导出报告或开始新的面试。",
                       "en": "This interview has ended; export the report or start a new one."},
    "nothing_received": {"zh": "没有收到内容。请输入你的回答，或输入 /skip 跳过、/hint 要提示。",
                         "en": "Nothing received. Type your answer, or /skip, or /hint."},
    # engine: grading
    "hint_cost": {"zh": " 使用提示扣 {points} 分。", "en": " Hints cost {points} points."},
    "over_time": {"zh": " 用时 {seconds} 秒，超过 {budget} 秒的预算，练习把回答压缩到 1–2 分钟。",
                  "en": " Took {seconds} s, over the {budget} s budget: practise a 1–2 minute answer."},
    "grade_head": {"zh": "【评分】{band} · {score} 分", "en": "[Grade] {band} · {score}/100"},
    "model_timeout": {"zh": "模型响应超时，本题已改用离线评分。", "en": "The model timed out; this answer was graded offline."},
    "closing": {"zh": "面试结束。总分 {score}（{band}）。薄弱话题：{weak}。完整报告和复习计划见右侧/导出。",
                "en": "The interview is over. Overall {score} ({band}). See the report for the study plan."},
    "none": {"zh": "无", "en": "none"},
    # engine: commands
    "help": {"zh": "可用命令：/harder ksana（沿当前话题追问 KsanaLLM 的实现，每次难一级）、/harder（当前话题更难一级）、"
                   "/hint（提示，逐级扣分：5/10/15）、/skip（跳过本题）、/rate 流畅|基本|卡顿|不会（给上一题自评）、/end（结束面试并生成报告）。",
             "en": "Commands: /harder ksana (KsanaLLM's implementation of the current topic, one level harder each time), /harder (harder on this topic), "
                   "/hint (a hint; costs 5/10/15 points), /skip, /rate 流畅|基本|卡顿|不会 (rate your last answer), /end (finish and report)."},
    "unknown_command": {"zh": "未知命令。", "en": "Unknown command. "},
    "nothing_to_rate": {"zh": "还没有已回答的题目可以自评。", "en": "There is no answered question to rate yet."},
    "rated": {"zh": "已记录自评：{rating}（评分器：{band}）。", "en": "Self-rating recorded: {rating} (grader: {band})."},
    "no_open_question": {"zh": "当前没有进行中的题目。", "en": "No question is open."},
    "no_hints_left": {"zh": "提示已经用完了，试着作答或 /skip。", "en": "No hints left; answer or /skip."},
    "hint_tail": {"zh": "（提示 {level}/3，本题累计扣 {total} 分；{after}）", "en": " (hint {level}/3, −{total} points so far; {after})"},
    "hint_next": {"zh": "再要下一级提示扣 {points} 分", "en": "the next hint costs {points}"},
    "hint_last": {"zh": "提示已用完", "en": "no hints left"},
    "skipped_feedback": {"zh": "已跳过。", "en": "Skipped. "},
    "skipping": {"zh": "好的，跳过这题。", "en": "OK, skipping this one."},
    "ladder_done_next": {"zh": "「{ladder}」这条阶梯已经问完了，接下来换成「{next}」的题。",
                         "en": "The ladder \"{ladder}\" is done; next come questions from \"{next}\"."},
    "ladders_done": {"zh": "更难的 KsanaLLM 题都已经问过了，我们继续原来的面试。",
                     "en": "Every harder KsanaLLM question has been asked; let's go on with the interview."},
    "topic_top_level": {"zh": "「{topic}」已经没有更难的题了；想往源码深挖可以用 /harder ksana，或者继续作答。",
                        "en": "There is nothing harder on {topic}; try /harder ksana for source-level questions, or answer on."},
    # engine: reverse stage
    "anything_else": {"zh": "还有其他问题吗？（没有的话说「没有了」）", "en": "Anything else? (say 'no more' when done)"},
    "not_in_notes": {"zh": "这个问题我的笔记里没有可靠的依据，我不确定，就不乱答了。",
                     "en": "The notes have nothing reliable on that, so I don't know and won't guess."},
    "closest_section": {"zh": "笔记里最接近的是「{where}」，可以去那里看看。", "en": " The closest section of the notes is {where}."},
    "from_notes": {"zh": "根据笔记（{where}）：", "en": "From the notes ({where}): "},
    # hints
    "hint_reasoning": {"zh": "提示：先别急着背结论。针对「{question}」，按「它要解决什么问题 → 靠什么机制做到 → 代价或边界是什么」一步步推。",
                       "en": "Hint: reason it out for \"{question}\": what problem it solves → by what mechanism → what it costs or where it stops working."},
    "hint_concept": {"zh": "提示：关键在这一点——{probe}", "en": "Hint: the key is this — {probe}"},
    "hint_concepts": {"zh": "提示：想想这几个概念之间的关系：{concepts}。", "en": "Hint: think about how these relate: {concepts}."},
    "scaffold": {"zh": "没关系，我们先退一步，从它的基础说起：\n", "en": "No problem — let's take one step back to what it builds on:\n"},
    "hint_note": {"zh": "提示：这部分在笔记 {note}。", "en": "Hint: this is in the notes at {note}."},
    # grading feedback
    "fb_injection": {"zh": "回答里对评分者的指令已忽略，只按内容评分。",
                     "en": "Instructions addressed to the grader were ignored; only the content was graded."},
    "fb_keyword_list": {"zh": "只列关键词没有解释，不计分：请把机制讲出来。",
                        "en": "A bare list of keywords earns no credit: explain the mechanism."},
    "fb_parroting": {"zh": "复述题目不算回答。", "en": "Restating the question is not an answer."},
    "fb_covered": {"zh": "讲到了 {n}/{total} 个要点（各自的原话见上）。", "en": "Covered {n} of {total} points (each quotes your words above)."},
    "fb_missing": {"zh": "还缺：{names}。", "en": "Missing: {names}."},
    "fb_wrong": {"zh": "有误：{claim} → {correction}（{source}）", "en": "Incorrect: {claim} → {correction} ({source})"},
    "fb_reread": {"zh": "建议重读：{where}。", "en": "Re-read: {where}."},
    "fb_empty": {"zh": "请先作答。", "en": "Please answer the question."},
    "fb_band_lower": {"zh": "整体判为「{band}」：要点的词提到了，但{why}。", "en": "Overall {band}: the points' words are there, but {why}."},
    "fb_band_higher": {"zh": "整体判为「{band}」：没用要点的原词，但意思讲到了。",
                       "en": "Overall {band}: not in the rubric's words, but the meaning is there."},
    "fb_band_higher_part": {"zh": "整体判为「{band}」：没用要点的原词，但讲到了一部分意思。",
                            "en": "Overall {band}: not in the rubric's words, but part of the meaning is there."},
    "fb_off_topic": {"zh": "这段回答更像在讲别的话题，没有回答这道题问的内容。",
                     "en": "This answer is about another topic, not what was asked."},
    "why_hedged": {"zh": "关键处用了「好像、应该是」这类不确定的说法", "en": "the key parts are hedged"},
    "why_short": {"zh": "讲得太简略，缺少机制和原因", "en": "it is too brief to show the mechanism and the why"},
    "why_meaning": {"zh": "整体意思和要点对不上或不完整", "en": "what it says does not fully match the points"},
    "fb_fallback": {"zh": "{reason}，本题已改用离线评分。", "en": "{reason}; graded offline instead."},
}


LANGUAGE_NAME = {"zh": "中文", "en": "English"}


def language_name(lang: str) -> str:
    """How a prompt names the language to answer in."""
    return LANGUAGE_NAME["en" if lang == "en" else "zh"]


def say(key: str, lang: str, **values: object) -> str:
    """The text for ``key`` in ``lang`` (zh unless ``en``), with ``values`` filled in."""
    entry = CATALOGUE[key]
    return entry["en" if lang == "en" else "zh"].format(**values)


def short(text: str, limit: int = 48) -> str:
    """A one-line label: whole up to ``limit`` characters, else cut at the last punctuation (or word) with an ellipsis."""
    text = " ".join(str(text or "").split())
    if len(text) <= limit:
        return text
    cut = max(text.rfind(c, 0, limit) for c in "，。？！；：,.?!;: ")
    return text[:cut if cut > limit // 2 else limit].rstrip("，,;；: ") + "…"
