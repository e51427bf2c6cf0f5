"""The numeric checker (interviewer/quantities.py): numbers and units read from spoken answers, tolerance, off-by-factor diagnoses, formulas."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interviewer.quantities import (
    Quantity,
    check_numeric,
    decode_step_lower_bound_s,
    extract_quantities,
    format_quantity,
    kv_cache_bytes,
    pp_bubble_fraction,
    ridge_point,
    ring_allreduce_bytes_per_gpu,
    weights_kv_crossover_batch,
)

GiB = 2 ** 30
LLAMA2_7B_4K = 2 * 32 * 32 * 128 * 2 * 4096  # = 2 GiB exactly (hand-computed: 524288 B/token × 4096)


def only(text: str) -> Quantity:
    qs = extract_quantities(text)
    assert len(qs) == 1, qs
    return qs[0]


# ------------------------------------------------------------------ extraction: numerals
@pytest.mark.parametrize("text, value", [
    ("一百二十八", 128), ("两千零四十八", 2048), ("三点五", 3.5), ("十六", 16), ("二十", 20),
    ("1.2万", 12000), ("3亿", 3e8), ("两千五", 2500), ("一万五", 15000), ("一千零二十四", 1024),
    ("一半", 0.5), ("1,024", 1024), ("1.5e9", 1.5e9), ("1.5×10^9", 1.5e9), ("2^30", 2 ** 30),
    ("三点五万", 35000), ("一亿五千万", 1.5e8),
])
def test_numerals(text, value):
    q = only(text)
    assert q.value == pytest.approx(value)
    assert q.dimension == "none"


def test_numeral_with_unit_and_text_span():
    q = only("答案是一百二十八 GB 吧")
    assert q.value == pytest.approx(128e9) and q.dimension == "bytes" and q.text == "一百二十八 GB"


# ------------------------------------------------------------------ extraction: units
@pytest.mark.parametrize("text, value, dim", [
    ("512 B", 512, "bytes"), ("16 字节", 16, "bytes"), ("4 KB", 4e3, "bytes"), ("4 KiB", 4096, "bytes"),
    ("3 MiB", 3 * 2 ** 20, "bytes"), ("1,024 MiB", GiB, "bytes"), ("2 GiB", 2 * GiB, "bytes"),
    ("1.5 TB", 1.5e12, "bytes"), ("128 千字节", 128e3, "bytes"), ("300兆", 300e6, "bytes"),
    ("16 bit", 2, "bytes"), ("4bit", 0.5, "bytes"), ("1.5e9 B", 1.5e9, "bytes"),
    ("12.5 ms", 0.0125, "seconds"), ("30毫秒", 0.03, "seconds"), ("2 s", 2, "seconds"), ("3秒", 3, "seconds"),
    ("20 us", 2e-5, "seconds"), ("20μs", 2e-5, "seconds"), ("20 µs", 2e-5, "seconds"), ("5 微秒", 5e-6, "seconds"),
    ("半秒", 0.5, "seconds"), ("两个半小时", 9000, "seconds"),
    ("3.35 TB/s", 3.35e12, "bytes_per_second"), ("900 GB/s", 9e11, "bytes_per_second"),
    ("3.35TB每秒", 3.35e12, "bytes_per_second"), ("900 GiB/s", 900 * GiB, "bytes_per_second"),
    ("1.6个G", 1.6e9, "bytes"), ("16gb", 16e9, "bytes"),
    ("989 TFLOPS", 989e12, "flops"), ("312 TFLOPs", 312e12, "flops"),
    ("295 FLOPs/Byte", 295, "flops_per_byte"), ("156 FLOP/B", 156, "flops_per_byte"),
    ("50%", 0.5, "ratio"), ("百分之五十", 0.5, "ratio"), ("五成", 0.5, "ratio"), ("三成", 0.3, "ratio"),
    ("七成五", 0.75, "ratio"), ("四分之一", 0.25, "ratio"), ("3 倍", 3, "ratio"),
    ("32 层", 32, "count"), ("1.2万 tokens", 12000, "count"), ("7B 模型", 7e9, "count"),
])
def test_units(text, value, dim):
    q = only(text)
    assert (q.value, q.dimension) == (pytest.approx(value), dim)


def test_g_in_memory_context_is_gigabytes_and_ambiguous():
    q = only("13G显存")
    assert q.dimension == "bytes" and q.value == pytest.approx(13e9)
    assert q.binary_ambiguous and q.value * q.binary_factor == pytest.approx(13 * GiB)


def test_decimal_vs_binary_prefixes_are_distinguished():
    kb, kib = only("800 KB"), only("800 KiB")
    assert kb.value == 800_000 and kib.value == 819_200
    assert kb.binary_ambiguous and not kib.binary_ambiguous
    assert not only("3.35 TB/s").binary_ambiguous  # bandwidth specs are decimal


def test_model_and_hardware_names_are_not_quantities():
    assert extract_quantities("Llama2-7B 和 GPT-4 还有 FP16") == []
    assert [q.text for q in extract_quantities("A100-80GB 和 H100 的 80GB")] == ["80GB", "80GB"]
    assert extract_quantities("半精度训练") == []


# ------------------------------------------------------------------ extraction: ranges / approx
@pytest.mark.parametrize("text", ["20到30 GB", "20~30GB", "20-30 GB", "20GB 到 30GB", "二十到三十 GB", "20 至 30 GB"])
def test_ranges_keep_both_ends(text):
    q = only(text)
    assert q.is_range and q.dimension == "bytes"
    assert (q.low, q.high, q.value) == (pytest.approx(20e9), pytest.approx(30e9), pytest.approx(25e9))


def test_range_with_mismatched_units_splits():
    a, b = extract_quantities("2GB 到 30ms")
    assert (a.dimension, b.dimension) == ("bytes", "seconds") and not a.is_range


@pytest.mark.parametrize("text, approx", [
    ("约 2 GB", True), ("大概 12 ms", True), ("≈ 295 FLOPs/Byte", True), ("~20GB", True),
    ("2GB 左右", True), ("2 GB", False), ("4K 上下文", False), ("就是 2GB，大概 5 ms", False),
])
def test_approx_markers(text, approx):
    assert extract_quantities(text)[0].approx is approx


def test_several_numbers_only_one_is_the_answer():
    text = "Llama2-7B 有 32 层，4096 维，算下来 4K 上下文一个请求大概 2GB"
    dims = [(q.text, q.dimension) for q in extract_quantities(text)]
    assert ("2GB", "bytes") in dims and ("7B", "bytes") not in dims
    r = check_numeric(text, LLAMA2_7B_4K, "bytes", rel_tol=0.05)
    assert r.status == "correct" and r.quantity.text == "2GB" and r.quantity.approx


# ------------------------------------------------------------------ grading
def test_correct_feedback_text():
    r = check_numeric("大概 1.6 GB 吧", 1.6e9, "bytes")
    assert r.status == "correct" and r.feedback == "数值对（约 1.6 GB，允许 ±10%）"


def test_missing():
    r = check_numeric("我不太确定，应该跟层数和 head 数有关", 1e9, "bytes")
    assert r.status == "missing" and r.quantity is None


def test_wrong_unit_time_for_bytes():
    r = check_numeric("大概 12 ms", 2e9, "bytes")
    assert r.status == "wrong_unit"
    assert r.feedback == "单位不对：答的是时间，问的是字节"


def test_bare_number_for_bytes_is_wrong_unit():
    r = check_numeric("大概 2", 2e9, "bytes")
    assert r.status == "wrong_unit" and "缺少单位" in r.feedback


def test_plain_wrong():
    r = check_numeric("5 GB", LLAMA2_7B_4K, "bytes", factors={"忘了 K 和 V 两份": 0.5})
    assert r.status == "wrong" and r.factor_name is None and "5 GB" in r.feedback


def test_picks_closest_of_same_dimension():
    r = check_numeric("权重 14 GB，KV 2 GB，延迟 5 ms", 2e9, "bytes")
    assert r.status == "correct" and r.quantity.text == "2 GB"


def test_factor_diagnosis_uses_closest_candidate():
    r = check_numeric("权重 14 GB，KV 1 GB", 2e9, "bytes", factors={"忘了 K 和 V 两份": 0.5})
    assert r.status == "off_by_factor" and r.quantity.text == "1 GB"


def test_gib_vs_gb_acceptance():
    # "2 GB" for 2 GiB: decimal reading is 6.9% off, accepted through the binary reading.
    assert check_numeric("2 GB", 2 * GiB, "bytes", rel_tol=0.05).status == "correct"
    # explicit decimal value is fine as well
    assert check_numeric("2.15 GB", 2 * GiB, "bytes", rel_tol=0.05).status == "correct"
    # explicit GiB is not ambiguous: 2 GiB vs 2e9 is 7.4% off -> not correct at 5%
    r = check_numeric("2 GiB", 2e9, "bytes", rel_tol=0.05)
    assert r.status == "off_by_factor" and "KiB" in r.factor_name


def test_kb_vs_kib_confusion_with_tight_tolerance():
    r = check_numeric("800 KiB", 800e3, "bytes", rel_tol=0.01)
    assert r.status == "off_by_factor" and r.factor_name == "十进制/二进制单位混淆（KB vs KiB）"
    assert "1.024" in r.feedback


def test_unit_magnitude_error():
    r = check_numeric("1.6 MB", 1.6e9, "bytes")
    assert r.status == "off_by_factor" and r.factor_name == "单位量级错了" and "差了 1000 倍" in r.feedback
    r = check_numeric("4.8 s", 4.8e-3, "seconds")
    assert r.status == "off_by_factor" and r.factor_name == "单位量级错了"


KV_FACTORS = {"忘了 FP16 的 2 字节": 0.5, "忘了 K 和 V 两份": 0.5, "多乘了层数": 40}
PER_TOKEN_13B = 2 * 40 * 40 * 128 * 2  # 819200 B = 800 KiB


def test_off_by_factor_forgot_k_and_v():
    r = check_numeric("大概 1 GB", LLAMA2_7B_4K, "bytes", factors={"忘了 K 和 V 两份": 0.5})
    assert r.status == "off_by_factor" and r.factor_name == "忘了 K 和 V 两份"
    assert r.feedback == "差了 2 倍：可能忘了 K 和 V 两份"


def test_off_by_factor_forgot_fp16_bytes():
    r = check_numeric("400 KiB", PER_TOKEN_13B, "bytes", factors={"忘了 FP16 的 2 字节": 0.5})
    assert r.status == "off_by_factor" and r.feedback == "差了 2 倍：可能忘了 FP16 的 2 字节"


def test_off_by_factor_layers_and_pairs():
    r = check_numeric("32 MiB", PER_TOKEN_13B, "bytes", factors=KV_FACTORS)  # 32 MiB = 40 × 800 KiB
    assert r.status == "off_by_factor" and r.factor_name == "多乘了层数"
    r = check_numeric("200 KiB", PER_TOKEN_13B, "bytes", factors=KV_FACTORS)  # forgot both halves
    assert r.status == "off_by_factor" and r.factor_name == "忘了 FP16 的 2 字节 + 忘了 K 和 V 两份"


def test_correct_wins_over_factors():
    assert check_numeric("800 KiB", PER_TOKEN_13B, "bytes", factors=KV_FACTORS).status == "correct"


def test_ranges_in_grading():
    assert check_numeric("20到30 GB", 25e9, "bytes").status == "correct"
    assert check_numeric("20~30GB", 32e9, "bytes").status == "correct"  # overlaps band [28.8, 35.2]
    wide = check_numeric("10到100 GB", 25e9, "bytes")
    assert wide.status == "wrong" and "范围太宽" in wide.feedback
    assert check_numeric("1到2 GB", 25e9, "bytes").status == "wrong"


@pytest.mark.parametrize("text", ["百分之五十", "50%", "五成", "0.5", "一半左右"])
def test_percentage_forms(text):
    assert check_numeric(text, 0.5, "ratio").status == "correct"


def test_ratio_forms_wrong_and_confused():
    assert check_numeric("三成", 0.5, "ratio").status == "wrong"
    r = check_numeric("bubble 大概是 27", 3 / 11, "ratio")
    assert r.status == "off_by_factor" and r.factor_name == "百分数和小数搞混了"
    r = check_numeric("(4-1)/(8+4-1) = 3/11，约 27%", 3 / 11, "ratio", rel_tol=0.02)
    assert r.status == "correct" and r.quantity.text == "27%"


def test_ridge_point_bare_number_accepted():
    assert check_numeric("989/3.35 ≈ 295", 295.2, "flops_per_byte").status == "correct"
    assert check_numeric("约 295 FLOPs/Byte", 295.2, "flops_per_byte", rel_tol=0.01).status == "correct"


@pytest.mark.parametrize("kwargs", [dict(expected=0, dimension="bytes"), dict(expected=1, dimension="furlongs")])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        check_numeric("1 GB", **kwargs)


# ------------------------------------------------------------------ formatting
@pytest.mark.parametrize("value, dim, text", [
    (1.6e9, "bytes", "1.6 GB"), (819200, "bytes", "819 KB"), (999_700, "bytes", "1 MB"),
    (0.0125, "seconds", "12.5 ms"), (2.5, "seconds", "2.5 s"), (3e-6, "seconds", "3 μs"),
    (0.25, "ratio", "25%"), (2.0, "ratio", "2 倍"), (3.35e12, "bytes_per_second", "3.35 TB/s"),
    (989e12, "flops", "989 TFLOPS"), (295.22, "flops_per_byte", "295 FLOPs/Byte"),
    (128, "count", "128"), (7e9, "count", "70亿"), (0.5, "none", "0.5"),
])
def test_format_quantity(value, dim, text):
    assert format_quantity(value, dim) == text


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["bytes", "seconds", "ratio", "count", "flops_per_byte", "flops", "bytes_per_second", "none"]),
       st.floats(min_value=1e-6, max_value=1e15, allow_nan=False, allow_infinity=False))
def test_format_extract_round_trip(dim, value):
    q = only(format_quantity(value, dim))
    assert q.value == pytest.approx(value, rel=0.01)
    assert q.dimension == dim or (dim == "count" and q.dimension == "none")


# ------------------------------------------------------------------ formula helpers
def test_kv_cache_bytes():
    assert kv_cache_bytes(40, 40, 128, 1) == 819_200  # Llama-2-13B, FP16, per token = 800 KiB
    assert kv_cache_bytes(40, 40, 128, 4096) == 3_355_443_200  # = 3.125 GiB
    assert kv_cache_bytes(32, 32, 128, 4096) == 2 * GiB  # Llama-2-7B, 4K context
    assert kv_cache_bytes(80, 8, 128, 1, batch=1) == 327_680  # Llama-2-70B GQA: 320 KiB/token
    assert kv_cache_bytes(32, 32, 128, 1, batch=8, bytes_per_elem=1) == 2_097_152  # FP8, batch 8


def test_decode_lower_bound():
    assert decode_step_lower_bound_s(14e9, 2e9, 3.35e12) == pytest.approx(0.0047761, rel=1e-4)  # 16/3350 s


def test_ridge_point():
    assert ridge_point(989e12, 3.35e12) == pytest.approx(295.22, rel=1e-4)
    assert ridge_point(312e12, 2.039e12) == pytest.approx(153.0, rel=1e-3)  # A100 80GB


def test_pp_bubble_fraction():
    assert pp_bubble_fraction(4, 8) == pytest.approx(3 / 11)
    assert pp_bubble_fraction(1, 8) == 0
    assert pp_bubble_fraction(8, 1) == pytest.approx(7 / 8)


def test_ring_allreduce():
    assert ring_allreduce_bytes_per_gpu(1e9, 8) == pytest.approx(1.75e9)
    assert ring_allreduce_bytes_per_gpu(1e9, 2) == pytest.approx(1e9)
    assert ring_allreduce_bytes_per_gpu(1e9, 1) == 0


def test_crossover_batch():
    assert weights_kv_crossover_batch(14e9, 2 * GiB) == pytest.approx(6.519, rel=1e-3)


@pytest.mark.parametrize("fn, args", [(kv_cache_bytes, (0, 1, 1, 1)), (ridge_point, (1, 0)),
                                      (pp_bubble_fraction, (0, 4)), (ring_allreduce_bytes_per_gpu, (1, 0))])
def test_helpers_reject_non_positive(fn, args):
    with pytest.raises(ValueError):
        fn(*args)


def test_helpers_feed_the_checker():
    expected = kv_cache_bytes(40, 40, 128, 4096)  # 3.36 GB = 3.125 GiB
    assert check_numeric("约 3.1 GiB", expected, "bytes", rel_tol=0.05).status == "correct"
    assert check_numeric("三点三五 GB 左右", expected, "bytes", rel_tol=0.05).status == "correct"
    r = check_numeric("1.68 GB", expected, "bytes", factors={"忘了 K 和 V 两份": 0.5})
    assert r.status == "off_by_factor"
