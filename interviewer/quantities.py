"""Numeric-answer grading for a Chinese mock interviewer on LLM inference.

This module owns exactly three things (stdlib only, no I/O, no question text):

1. Extraction -- ``extract_quantities`` turns free-form spoken Chinese/English answers
   ("大概两千 MB"、"20~30GB"、"三成"、"1.5e9 B") into typed ``Quantity`` objects whose
   ``value`` is in the SI base of its dimension (bytes, seconds, FLOP/s, ...).
2. Grading -- ``check_numeric`` compares one expected number with an answer: tolerance,
   ranges, decimal/binary (GB vs GiB) ambiguity, wrong units, and "off by a known
   factor" diagnoses, returning a ``NumericResult`` with short Chinese feedback.
3. Reference formulas -- tiny pure helpers used to compute the expected values
   (KV cache size, decode lower bound, roofline ridge, PP bubble, ring all-reduce,
   weights/KV crossover batch).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from itertools import combinations

DIMENSIONS = ("bytes", "seconds", "ratio", "count", "flops_per_byte", "flops", "bytes_per_second", "none")
STATUSES = ("correct", "off_by_factor", "wrong", "missing", "wrong_unit")
_DIM_CN = {"bytes": "字节", "seconds": "时间", "ratio": "比例", "count": "个数",
           "flops_per_byte": "算术强度（FLOPs/Byte）", "flops": "算力（FLOPS）",
           "bytes_per_second": "带宽", "none": "没有单位的纯数字"}


@dataclass(frozen=True)
class Quantity:
    """A number found in an answer. ``value`` is in SI base units of ``dimension``.

    For ranges ``low``/``high`` hold both ends and ``value`` is their midpoint.
    ``binary_ambiguous`` marks decimal-prefixed byte units (GB, G, MB, 兆, KB...) that people
    often use to mean GiB/MiB/KiB; ``binary_factor`` converts ``value`` to that reading.
    """
    value: float
    dimension: str
    text: str
    span: tuple[int, int] = (0, 0)
    low: float | None = None
    high: float | None = None
    approx: bool = False
    binary_ambiguous: bool = False
    binary_factor: float = 1.0

    @property
    def is_range(self) -> bool:
        return self.low is not None and self.high is not None

    def readings(self) -> tuple[float, ...]:
        """Multipliers for every accepted interpretation (decimal, and binary if ambiguous)."""
        return (1.0, self.binary_factor) if self.binary_ambiguous else (1.0,)


@dataclass(frozen=True)
class NumericResult:
    status: str
    quantity: Quantity | None
    factor_name: str | None
    feedback: str
    ratio: float | None = None  # answer / expected (decimal reading)


# ---------------------------------------------------------------- unit table
_PER_S = r"(?:\s*/\s*s|ps|每秒|/秒)"
_UNITS: list[tuple[str, str, float, float]] = []  # (regex, dimension, multiplier, binary factor)
for _p, _k in (("K", 1), ("M", 2), ("G", 3), ("T", 4), ("P", 5), ("E", 6)):
    _pp = "[Kk]" if _p == "K" else _p
    _UNITS += [(_pp + "iB" + _PER_S, "bytes_per_second", 1024.0 ** _k, 1.0),
               (_pp + "B" + _PER_S, "bytes_per_second", 1000.0 ** _k, 1.0),
               (_pp + r"(?:FLOP[Ss]?|[Ff]lops)(?:/s)?", "flops", 1000.0 ** _k, 1.0),
               (_pp + "iB", "bytes", 1024.0 ** _k, 1.0),
               (f"{_pp}B|{_p.lower()}b", "bytes", 1000.0 ** _k, 1.024 ** _k),
               (_pp + r"(?:bits?|比特)", "bytes", 1000.0 ** _k / 8, 1.0)]
_UNITS += [
    (r"B" + _PER_S, "bytes_per_second", 1.0, 1.0),
    (r"FLOPs?\s*/\s*(?:Byte|B)|FLOPs?每字节|[Ff]lops?/[Bb]yte", "flops_per_byte", 1.0, 1.0),
    (r"FLOP[Ss]?|[Ff]lops", "flops", 1.0, 1.0),
    (r"个\s*G[B]?", "bytes", 1e9, 1.024 ** 3), (r"千字节", "bytes", 1e3, 1.024), (r"兆字节|兆", "bytes", 1e6, 1.024 ** 2),
    (r"字节|[Bb]ytes?|B", "bytes", 1.0, 1.0), (r"G", "bytes", 1e9, 1.024 ** 3),
    (r"bits?|比特", "bytes", 0.125, 1.0),
    (r"毫秒|ms", "seconds", 1e-3, 1.0), (r"微秒|[uμ]s", "seconds", 1e-6, 1.0),
    (r"纳秒|ns", "seconds", 1e-9, 1.0), (r"分钟|min", "seconds", 60.0, 1.0),
    (r"小时", "seconds", 3600.0, 1.0), (r"秒|seconds?|sec|s", "seconds", 1.0, 1.0),
    (r"%", "ratio", 0.01, 1.0), (r"成[一二三四五六七八九]?", "ratio", 0.1, 1.0),
    (r"倍|x(?!\s*\d)|×(?!\s*\d)", "ratio", 1.0, 1.0),
    (r"[Kk]", "count", 1e3, 1.024),
    (r"层|个|头|维|张|块|次|步|条|参数|tokens?|GPUs?|卡", "count", 1.0, 1.0),
]
_UNIT = "(?:" + "|".join(f"(?:{u[0]})" for u in _UNITS) + r")(?![A-Za-z])"

# ---------------------------------------------------------------- number grammar
_CD = "零〇一二两三四五六七八九"
_CN = rf"[{_CD}十][{_CD}十百千万亿]*(?:点[{_CD}]+[万亿]?)?(?:个半)?"
_MULT = {"万亿": 1e12, "千万": 1e7, "百万": 1e6, "万": 1e4, "亿": 1e8, "千": 1e3, "百": 1e2}
_AR = (r"(?:\d+(?:\.\d+)?\s*(?:\^|\*\*)\s*[+-]?\d+"
       r"|(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?"
       r"(?:[eE][+-]?\d+|\s*[×xX*]\s*10\s*(?:\^|\*\*)\s*[+-]?\d+)?(?:万亿|千万|百万|万|亿|千|百)?)")
_NUM = rf"(?:{_AR}|一半|{_CN}|半)"
_TOKEN = re.compile(
    r"(?<![A-Za-z\d.])(?:"
    rf"(?P<pct>百分之|千分之)\s*(?P<pn>{_NUM})"
    rf"|(?P<den>{_CN}|\d+)分之(?P<fn>{_NUM})"
    r"|(?P<fa>\d+(?:\.\d+)?)/(?P<fb>\d+(?:\.\d+)?)(?![\d/.])"
    rf"|(?P<a>{_NUM})(?:\s*(?P<ua>{_UNIT}))?"
    rf"(?:\s*(?P<sep>到|至|~|-|—|–)\s*(?P<b>{_NUM})(?:\s*(?P<ub>{_UNIT}))?)?)")
_APPROX = ("约", "大概", "大致", "差不多", "将近", "接近", "估计", "≈", "~", "about", "around", "roughly", "approx")
_FW = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F) if c != 0xFF0C}  # full-width -> ASCII, keep '，'
_FW[0xB5] = "μ"
_CN_VAL = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
_CN_POS = {"十": 10, "百": 100, "千": 1000, "万": 10 ** 4, "亿": 10 ** 8}


def _cn_int(s: str) -> int:
    """Chinese integer numeral -> int; supports 零, 两, and elision (两千五 = 2500)."""
    total = wan = section = num = 0
    last, after_unit = 1, False
    for ch in s:
        if ch in _CN_VAL:
            num, after_unit, last = _CN_VAL[ch], after_unit and ch not in "零〇", 1 if ch in "零〇" else last
        elif ch in "十百千":
            section += (num or 1) * _CN_POS[ch]
            num, last, after_unit = 0, _CN_POS[ch], True
        elif ch == "万":
            wan, section, num, last, after_unit = ((section + num) or 1) * 10 ** 4, 0, 0, 10 ** 4, True
        elif ch == "亿":
            total, wan, section, num = ((total + wan + section + num) or 1) * 10 ** 8, 0, 0, 0
            last, after_unit = 10 ** 8, True
    return total + wan + section + (num * last // 10 if after_unit and num and last > 10 else num)


def _parse_num(s: str) -> float:
    s = s.strip()
    if s in ("半", "一半"):
        return 0.5
    if s[0] in _CD + "十":
        half, s = (0.5 if s.endswith("个半") else 0.0), s.removesuffix("个半")
        s, mult = (s[:-1], float(_CN_POS[s[-1]])) if "点" in s and s[-1] in "万亿" else (s, 1.0)
        whole, _, frac = s.partition("点")
        f = float("0." + "".join(str(_CN_VAL[c]) for c in frac)) if frac else 0.0
        return (_cn_int(whole) + f) * mult + half
    k = next((k for k in _MULT if s.endswith(k)), "")
    s, mult = s[: len(s) - len(k)].replace(",", ""), _MULT.get(k, 1.0)
    if m := re.fullmatch(r"(.+?)\s*[×xX*]\s*10\s*(?:\^|\*\*)\s*([+-]?\d+)", s):
        return float(m[1]) * 10.0 ** int(m[2]) * mult
    if m := re.fullmatch(r"(.+?)\s*(?:\^|\*\*)\s*([+-]?\d+)", s):
        return float(m[1]) ** int(m[2]) * mult
    return float(s) * mult


def _unit_info(u: str | None) -> tuple[str, float, float]:
    return next(((d, m, b) for pat, d, m, b in _UNITS if u and re.fullmatch(pat, u)), ("none", 1.0, 1.0))


def _is_approx(t: str, start: int, end: int, prev_end: int) -> bool:
    window = re.split(r"[，,。；;！？!?\n]", t[max(prev_end, start - 8):start])[-1].lower()
    return any(w in window for w in _APPROX) or bool(re.match(r"\s*(?:左右|上下(?!文)|出头)", t[end:]))


def _quantities_from(m: re.Match, t: str, text: str, approx: bool) -> list[Quantity]:
    span, raw = (m.start(), m.end()), text[m.start():m.end()]
    if m["pct"]:
        return [Quantity(_parse_num(m["pn"]) * (0.01 if m["pct"] == "百分之" else 0.001), "ratio", raw, span, approx=approx)]
    if m["den"]:
        den = _parse_num(m["den"])
        return [Quantity(_parse_num(m["fn"]) / den, "ratio", raw, span, approx=approx)] if den else []
    if m["fa"]:
        fb = float(m["fb"])
        return [Quantity(float(m["fa"]) / fb, "none", raw, span, approx=approx)] if fb else []
    ua, ub = m["ua"], m["ub"]
    unit = ub or ua
    if re.search(r"[A-Za-z][A-Za-z0-9.]*-$", t[max(0, m.start() - 24):m.start()]) and unit in (None, "B"):
        return []  # model names: Llama2-7B, GPT-4
    if m["a"] == "半" and not unit:
        return []  # 半精度 etc.
    if ua and ub and _unit_info(ua)[0] != _unit_info(ub)[0]:  # "2GB 到 30ms": two separate things
        return [Quantity(_parse_num(m[g]) * _unit_info(m[u])[1], _unit_info(m[u])[0], text[m.start(g):m.end(u)],
                         (m.start(g), m.end(u)), approx=approx, binary_ambiguous=_unit_info(m[u])[2] != 1.0,
                         binary_factor=_unit_info(m[u])[2]) for g, u in (("a", "ua"), ("b", "ub"))]
    dim, mult, bf = _unit_info(unit)
    extra = _CN_VAL[unit[1]] * 0.01 if unit and unit.startswith("成") and len(unit) == 2 else 0.0  # 七成五
    if unit == "B" and re.match(r"\s*(?:模型|参数|model|param)", t[m.end():]):
        dim, mult = "count", 1e9  # "7B 模型" = 7 billion parameters
    a = _parse_num(m["a"]) * mult + extra
    kw = dict(approx=approx, binary_ambiguous=bf != 1.0, binary_factor=bf)
    if m["b"] is None:
        return [Quantity(a, dim, raw, span, **kw)]
    b = _parse_num(m["b"]) * mult + extra
    lo, hi = min(a, b), max(a, b)
    return [Quantity((lo + hi) / 2, dim, raw, span, low=lo, high=hi, **kw)]


def extract_quantities(text: str) -> list[Quantity]:
    """Find every number (with unit, range and approximation info) in an answer, in order."""
    t = text.translate(_FW)
    out: list[Quantity] = []
    prev_end = 0
    for m in _TOKEN.finditer(t):
        try:
            qs = _quantities_from(m, t, text, _is_approx(t, m.start(), m.end(), prev_end))
        except (ValueError, OverflowError, KeyError, ZeroDivisionError):
            qs = []
        out += [q for q in qs if math.isfinite(q.value)]
        prev_end = m.end()
    return out


# ---------------------------------------------------------------- formatting
_TABLES = {
    "bytes": [(1e18, "EB"), (1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB"), (1.0, "B")],
    "bytes_per_second": [(1e15, "PB/s"), (1e12, "TB/s"), (1e9, "GB/s"), (1e6, "MB/s"), (1e3, "KB/s"), (1.0, "B/s")],
    "flops": [(1e18, "EFLOPS"), (1e15, "PFLOPS"), (1e12, "TFLOPS"), (1e9, "GFLOPS"), (1e6, "MFLOPS"), (1.0, "FLOPS")],
    "seconds": [(1.0, "s"), (1e-3, "ms"), (1e-6, "μs"), (1e-9, "ns")],
    "flops_per_byte": [(1.0, "FLOPs/Byte")],
    "count": [(1e8, "亿"), (1e4, "万"), (1.0, "")],
    "none": [(1.0, "")],
}


def _num(x: float, sig: int = 3) -> str:
    """``sig`` significant digits, never scientific notation, trailing zeros stripped."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    s = f"{x:.{max(0, sig - 1 - math.floor(math.log10(abs(x))))}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def format_quantity(value: float, dimension: str) -> str:
    """Human, Chinese-friendly string: 1.6e9 bytes -> "1.6 GB", 0.0125 s -> "12.5 ms", 0.25 ratio -> "25%"."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    if dimension == "ratio":
        return f"{_num(value * 100)}%" if abs(value) < 1 else f"{_num(value)} 倍"
    table = _TABLES[dimension]
    i = next((j for j, (f, _) in enumerate(table) if abs(value) >= f), len(table) - 1)
    s = _num(value / table[i][0])
    if i > 0 and abs(float(s)) >= table[i - 1][0] / table[i][0]:  # 999.7 KB -> 1 MB
        i -= 1
        s = _num(value / table[i][0])
    sep = "" if dimension == "count" or not table[i][1] else " "
    return f"{s}{sep}{table[i][1]}"


def format_bytes_both(value: float) -> str:
    """Bytes in binary units, with the decimal reading beside them: 1073741824 -> "1 GiB（1.07 GB）"."""
    k = max(0, min(4, int(math.log(max(value, 1), 1024))))
    binary = f"{_num(value / 1024 ** k)} {('B', 'KiB', 'MiB', 'GiB', 'TiB')[k]}"
    return f"{binary}（{format_quantity(value, 'bytes')}）" if k else binary


# ---------------------------------------------------------------- grading
_FALLBACK = {"ratio": ("none",), "count": ("none",), "flops_per_byte": ("none",), "none": ("count", "ratio")}


def _intervals(q: Quantity) -> list[tuple[float, float]]:
    return [(q.low * f, q.high * f) if q.is_range else (q.value * f, q.value * f) for f in q.readings()]


def _dist(q: Quantity, expected: float) -> float:
    """Log-distance from ``expected`` to the nearest reading (0 if a range contains it)."""
    return min(0.0 if lo <= expected <= hi else min(abs(math.log(v / expected)) if v > 0 else math.inf
                                                    for v in (lo, hi)) for lo, hi in _intervals(q))


def _overlaps(q: Quantity, lo_b: float, hi_b: float) -> bool:
    return any(lo <= hi_b and hi >= lo_b for lo, hi in _intervals(q))


def _is_correct(q: Quantity, lo_b: float, hi_b: float) -> bool:
    return _overlaps(q, lo_b, hi_b) and (not q.is_range or (q.low > 0 and q.high <= 3 * q.low))


def _match_factor(q: Quantity, expected: float, rel_tol: float, dimension: str,
                  factors: dict[str, float]) -> tuple[str, float] | None:
    user = [(n, v) for n, v in factors.items() if v > 0]
    builtin = [("单位量级错了", float(b) ** (s * k)) for b in (1000, 1024) for k in (1, 2, 3, 4) for s in (1, -1)]
    if dimension in ("bytes", "bytes_per_second"):
        builtin += [("十进制/二进制单位混淆（KB vs KiB）", 1.024 ** (s * k)) for k in (1, 2, 3, 4) for s in (1, -1)]
    if dimension in ("ratio", "none"):
        builtin += [("百分数和小数搞混了", 100.0), ("百分数和小数搞混了", 0.01)]
    tiers = [user, [(f"{a} + {b}", x * y) for (a, x), (b, y) in combinations(user, 2)], builtin]
    ratios = [q.value * f / expected for f in q.readings() if q.value > 0]
    for tier in tiers:
        hits = [(abs(math.log(r / mult)), name, mult) for name, mult in tier for r in ratios
                if abs(r / mult - 1) <= rel_tol]
        if hits:
            _, name, mult = min(hits)
            return name, mult
    return None


def check_numeric(answer: str, expected: float, dimension: str, rel_tol: float = 0.1,
                  factors: dict[str, float] | None = None) -> NumericResult:
    """Grade ``answer`` against ``expected`` (SI base units of ``dimension``).

    Candidates of the asked dimension are preferred (bare numbers count only for
    ratio/count/FLOPs-per-byte); the one closest in log-ratio is graded.  Ranges are correct
    when they overlap the ±rel_tol band and high/low <= 3.  Decimal byte units also get
    their binary reading.  Misses are explained by ``factors`` (name -> answer/expected),
    pairs of them, then built-in unit-magnitude / KB-vs-KiB / percent confusions.
    """
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    if not (expected > 0 and math.isfinite(expected)):
        raise ValueError("expected must be a positive finite number")
    qs = extract_quantities(answer)
    if not qs:
        return NumericResult("missing", None, None, "没找到数值：请给出具体数字和单位")
    cands = [q for q in qs if q.dimension == dimension] or \
            [q for q in qs if q.dimension in _FALLBACK.get(dimension, ())]
    want = _DIM_CN[dimension]
    if not cands:
        got = next((q for q in qs if q.dimension != "none"), None)
        if got is None:
            return NumericResult("wrong_unit", qs[0], None, f"缺少单位：问的是{want}，请带上单位")
        return NumericResult("wrong_unit", got, None, f"单位不对：答的是{_DIM_CN[got.dimension]}，问的是{want}")
    lo_b, hi_b = expected * (1 - rel_tol), expected * (1 + rel_tol)
    ref, tol = format_quantity(expected, dimension), f"±{rel_tol * 100:g}%"
    ok = [q for q in cands if _is_correct(q, lo_b, hi_b)]
    q = min(ok or cands, key=lambda c: _dist(c, expected))
    ratio = q.value / expected
    if ok:
        return NumericResult("correct", q, None, f"数值对（约 {ref}，允许 {tol}）", ratio)
    if q.is_range and _overlaps(q, lo_b, hi_b):
        return NumericResult("wrong", q, None, f"范围太宽：{q.text.strip()} 跨度超过 3 倍，请给更具体的估计（参考约 {ref}）", ratio)
    hit = _match_factor(q, expected, rel_tol, dimension, factors or {})
    if hit:
        name, mult = hit
        return NumericResult("off_by_factor", q, name, f"差了 {max(mult, 1 / mult):.4g} 倍：可能{name}", ratio)
    return NumericResult("wrong", q, None, f"数值不对：答的是 {q.text.strip()}，参考答案约 {ref}（允许 {tol}）", ratio)


# ---------------------------------------------------------------- reference formulas
def _pos(**kw: float) -> None:
    if bad := [k for k, v in kw.items() if not v > 0]:
        raise ValueError(f"must be > 0: {', '.join(bad)}")


def kv_cache_bytes(layers: int, kv_heads: int, head_dim: int, tokens: int, batch: int = 1,
                   bytes_per_elem: float = 2) -> float:
    """KV cache = 2 (K and V) × layers × kv_heads × head_dim × tokens × batch × bytes_per_elem.
    Convention: standard decoder KV cache (vLLM / HF); kv_heads = num_key_value_heads (GQA/MQA aware)."""
    _pos(layers=layers, kv_heads=kv_heads, head_dim=head_dim, batch=batch, bytes_per_elem=bytes_per_elem)
    return 2.0 * layers * kv_heads * head_dim * tokens * batch * bytes_per_elem


def decode_step_lower_bound_s(weight_bytes: float, kv_bytes: float, bandwidth_bytes_s: float) -> float:
    """Memory-bound decode step time >= (weight_bytes + kv_bytes) / HBM bandwidth.
    Convention: each decode step streams all weights and the whole KV cache once (roofline bound)."""
    _pos(bandwidth_bytes_s=bandwidth_bytes_s)
    return (weight_bytes + kv_bytes) / bandwidth_bytes_s


def ridge_point(peak_flops: float, bandwidth_bytes_s: float) -> float:
    """Roofline ridge point (FLOPs/Byte) = peak FLOP/s / memory bandwidth (Williams et al., 2009)."""
    _pos(peak_flops=peak_flops, bandwidth_bytes_s=bandwidth_bytes_s)
    return peak_flops / bandwidth_bytes_s


def pp_bubble_fraction(stages: int, microbatches: int) -> float:
    """Pipeline bubble = (p − 1) / (m + p − 1): idle share of total time (GPipe, Huang et al. 2019).
    Note: Megatron-LM quotes (p − 1) / m instead (bubble relative to ideal compute time)."""
    _pos(stages=stages, microbatches=microbatches)
    return (stages - 1) / (microbatches + stages - 1)


def ring_allreduce_bytes_per_gpu(message_bytes: float, n_gpus: int) -> float:
    """Bytes each GPU sends in a ring all-reduce = 2 (n − 1) / n × message
    (reduce-scatter + all-gather; Patarasuk & Yuan 2009, NCCL "busbw" convention)."""
    _pos(n_gpus=n_gpus)
    return 2.0 * (n_gpus - 1) / n_gpus * message_bytes


def weights_kv_crossover_batch(weight_bytes: float, kv_bytes_per_seq: float) -> float:
    """Batch size at which total KV cache equals weight bytes = weight_bytes / kv_bytes_per_seq.
    Above it, decode memory traffic is dominated by KV rather than weights. Returned unrounded."""
    _pos(kv_bytes_per_seq=kv_bytes_per_seq)
    return weight_bytes / kv_bytes_per_seq
