"""Reading a candidate's answer as data: cleaning, sentences, language, and gaming signals.

Owns everything the graders need to know about the *text* of an answer before any rubric is
applied: HTML stripped for matching, sentences with their verbatim spans, the answer's language,
and the signals of gaming (instructions addressed to the grader, a bare keyword list, parroting
the question, "don't know").
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

TAG = re.compile(r"<\s*(script|style)[^>]*>.*?<\s*/\s*\1\s*>|<[^>]{0,300}>", re.IGNORECASE | re.DOTALL)
SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])|(?<=[.])\s+(?=[A-Z\u4e00-\u9fff])")
PARROT_SHARE = 0.4  # share of a sentence's character bigrams found in the question
CJK = re.compile(r"[\u4e00-\u9fff]")
MAX_ANSWER_CHARS = 20_000

INJECTION = re.compile(
    r"忽略.{0,12}(指令|指示|规则|评分|标准|rubric|提示|要求)|无视.{0,10}(规则|评分|标准)"
    r"|(给|打|判|评)(我|这个?回答|本题)?.{0,4}(满分|100\s*分|一百分|流畅)|直接(给|判|评).{0,6}(分|流畅|通过)"
    r"|(标记|记为|评为|判为|算作|设为|改成|改为|调成|调到|定为).{0,6}(流畅|满分|通过|100|高分)|(评分系统|评分员|打分系统|阅卷).{0,6}(管理员|请|你)"
    r"|(等级|分数|评分|成绩|档位)(直接)?(改|设|调|判|定)(成|为|到)|跳过.{0,6}(评分|这一?题|阶段|到最后|面试)|结束面试|进入下一阶段"
    r"|你(现在)?是.{0,6}(评分|考官|打分)|作为(评分|打分)|(系统提示|system prompt)\s*[:：]|(泄露|输出|打印|reveal|print).{0,10}(系统提示|system prompt)"
    r"|ignore\s+(all\s+|any\s+|the\s+|previous\s+|prior\s+|your\s+)*(instructions?|rubric|rules|grading|criteria)"
    r"|(give|award|assign)\s+(me\s+|this\s+)?(full|maximum|max|100|perfect)\s*(marks?|points?|score)?"
    r"|(mark|grade|rate|score)\s+(me|this|it|the answer)\s+(as\s+)?(流畅|fluent|100|perfect|excellent|full)"
    r"|you are (now )?(the|a) (grader|examiner)|as the grader|skip to the end|end the interview",
    re.IGNORECASE,
)
DONT_KNOW = re.compile(
    r"^\W*(不会|不懂|没学过|pass|跳过)\W*$|不知道|不清楚|不太清楚|不了解|没了解过|没学过|没有研究|答不上|不会(这|答)|想不起来|忘了"
    r"|don'?t know|not sure|no idea|haven'?t (studied|learned)|can'?t remember",
    re.IGNORECASE,
)
CONNECTIVES = re.compile(
    r"因为|所以|因此|就是|也就是|意味着|导致|使得|通过|然后|而是|这样|如果|否则|但是|不过|只需|只要|需要|可以|会|把|被|用来|相当于|比如|例如|于是|由于|其中|每|只"
    r"|\b(because|so|therefore|which|that|means|by|then|instead|if|only|each|every|when|so that|thus|since|but)\b",
    re.IGNORECASE,
)
LIST_SEP = re.compile(r"[、,，/|;；\n\s]+")
FUNCTION_CHARS = set("的了是在把就会要而这那它和与也都被让给对从到为以之所因但可用来时么吧呢啊嗯我你")
STOPWORDS = set("the a an is are was be to of and or so because it that this which when then by for with as in on at can will".split())


@dataclass(frozen=True)
class Sentence:
    raw: str  # verbatim from the answer
    clean: str  # tags removed, lower-cased, whitespace folded


def clean_text(text: str) -> str:
    """Text for matching: HTML tags and scripts removed, entities decoded, case and width folded."""
    text = TAG.sub(" ", text)
    text = html.unescape(text)
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def normalize_answer(answer: object) -> str:
    """Any input to a safe answer string: bytes decoded leniently, control characters dropped, capped."""
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", errors="replace")
    text = "" if answer is None else str(answer)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return text[:MAX_ANSWER_CHARS]


def sentences(answer: str) -> list[Sentence]:
    """Sentences with their verbatim text (for evidence quotes) and cleaned text (for matching).

    Punctuation inside HTML tags (``<img onerror="f('/x?y')">``) does not end a sentence.
    """
    shadow = TAG.sub(lambda m: "\0" * len(m.group(0)), answer)
    cuts = [0] + [m.start() for m in SENTENCE_END.finditer(shadow) if m.start() > 0] + [len(answer)]
    out = []
    for a, b in zip(cuts, cuts[1:]):
        raw = answer[a:b].strip()
        clean = clean_text(raw) if raw else ""
        if clean:
            out.append(Sentence(raw, clean))
    return out


def language(text: str) -> str:
    """``zh`` when Chinese characters make up a real share of the letters, else ``en``."""
    letters = sum(1 for ch in text if ch.isalpha())
    return "zh" if letters and len(CJK.findall(text)) / letters > 0.2 else ("en" if letters else "zh")


def is_injection(sentence: str) -> bool:
    return bool(INJECTION.search(sentence))


def says_dont_know(text: str) -> bool:
    return bool(DONT_KNOW.search(text))


ASCII_WORD = re.compile(r"[a-z0-9][a-z0-9_.+-]*")


@lru_cache(maxsize=8192)
def bigrams(text: str) -> frozenset[str]:
    """Units for text overlap: character bigrams of Chinese, and whole words of ASCII text
    (letter bigrams would let one English word outweigh a Chinese clause). Cached: a grade compares every sentence
    with every point's phrasings."""
    low = text.lower()
    units = set(ASCII_WORD.findall(low))
    cjk = re.sub(r"[\x00-\x7f\s\W_]+", " ", low)
    for run in cjk.split():
        units.update(run[i:i + 2] for i in range(len(run) - 1))
        if len(run) == 1:
            units.add(run)
    return frozenset(units)


def containment(part: str, whole: str) -> float:
    """Share of ``part``'s character bigrams that also occur in ``whole``."""
    a = bigrams(part)
    return len(a & bigrams(whole)) / len(a) if a else 0.0


NUMBER = re.compile(r"\d+(?:\.\d+)?")
ARITHMETIC = re.compile(r"\d\s*[×*÷/]\s*[\w(]|\d\s*[xX]\s*\d|\w\s*[×*÷]\s*\d|(?:除以|乘以|等于|[≈=]|divided by|times)\s*\d")


def is_parroting(sentence: str, question: str) -> bool:
    """A sentence that mostly restates the question (short replies such as "不是 LRU" are not, nor is a
    computation from the question's inputs: it states a number the question does not)."""
    grams = bigrams(sentence)
    if set(NUMBER.findall(sentence)) - set(NUMBER.findall(question)):
        return False
    return len(grams) >= max(8, len(bigrams(question)) // 3) and containment(sentence, question) >= PARROT_SHARE


def looks_like_keyword_list(text: str) -> bool:
    """A bare list of terms: many short items and almost no function words or explaining words. Arithmetic is never
    a list ("2×层数×KV 头数×…；32 层、32 个 KV 头…" works a number out, whatever the question asked)."""
    clean = clean_text(text)
    items = [i for i in LIST_SEP.split(clean) if i]
    if len(items) < 6 or len(re.findall(r"[。！？!?:：=]|\.\s", clean)) > 1 or ARITHMETIC.search(clean):
        return False
    avg = sum(min(len(i), 8) if i.isascii() else len(i) for i in items) / len(items)
    function = sum(1 for ch in clean if ch in FUNCTION_CHARS) + sum(1 for i in items if i in STOPWORDS)
    return avg <= 10 and function / len(items) < 0.15
