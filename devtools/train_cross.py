"""Train the grader's cross-encoder (``interviewer/grading/cross.py``): low-rank adapters on e5-small and an ordinal
head, fitted on labelled answers. Two steps, because training needs a GPU and PyTorch and the product needs neither:

    python -m devtools.train_cross export DIR    # here: token ids of every labelled answer + the 4-bit base weights
    python3 -m devtools.train_cross fit DIR OUT [EPOCHS BATCH LR TOP]  # on the GPU machine (PyTorch); shipped: 12 16 0.0003
    # or one GPU per part: CROSS_PARTS=0 (a fold) ... CROSS_PARTS=final, each into OUT, then (no GPU needed)
    python3 -m devtools.train_cross merge DIR OUT  # OUT/part-*.json + OUT/final.json → OUT/cross-report.json
    cp OUT/cross.npz interviewer/grading/ && cp OUT/cross-report.json eval/grading/train/cross_oof.json
    python -m devtools.train_calibrator         # refit the calibrator on the new out-of-fold signal

Fitted on development data only, as the calibrator is: the dev split, ``eval/grading/train/`` and off-topic answers
cut from the notes (``train_calibrator.off_topic_rows``: the
calibrator's 160 and 160 more). Grouped 5-fold training by question gives every fitted row
an out-of-fold prediction (saved in the report), which is what the calibrator is fitted on, so it learns how far to
trust the cross-encoder on answers it has not seen. Heldout and blind rows are exported only to be measured.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np

LINEARS = ("q", "k", "v", "ao", "fi", "fo")
RANK, ALPHA = 16, 32
FOLDS = 5
PARTS = os.environ.get("CROSS_PARTS", "")  # "0,1" (folds) and/or "final": fit only these; `merge` joins the parts


def export(out: Path) -> None:
    from devtools.evaluation import load_labelled
    from devtools.train_calibrator import load_train, off_topic_rows
    from interviewer.bands import band_index
    from interviewer.grading.contract import Target
    from interviewer.grading.cross import context_text, pair_ids
    from interviewer.knowledge.bank import default_bank
    from interviewer.search.embedding import ModelFile, Tokenizer, dequantize, model_path

    out.mkdir(parents=True, exist_ok=True)
    f = ModelFile(model_path())
    tok = Tokenizer(f)
    bank = default_bank()
    labelled = load_labelled()
    rows = ([dict(r, use="fit") for r in labelled if r["split"] == "dev"] + [dict(r, use="fit") for r in load_train()]
            + [dict(r, use="fit") for r in off_topic_rows()]  # the calibrator's, so their out-of-fold signal is theirs
            + [dict(r, use="fit", id="more-" + r["id"]) for r in off_topic_rows(seed=1)]
            + [dict(r, use="measure") for r in labelled if r["split"] in ("heldout", "blind")])
    seqs = []
    for r in rows:
        target = Target.of_ref(bank, r.get("target_id") or r["question_id"])
        seqs.append(pair_ids(tok, f.bos, f.eos, context_text(target), r["answer"]))
    vocab = np.unique(np.concatenate(seqs))
    remap = {int(v): i for i, v in enumerate(vocab)}
    flat = np.array([remap[int(t)] for s in seqs for t in s], np.int32)
    offsets = np.cumsum([0] + [len(s) for s in seqs]).astype(np.int64)
    questions = sorted({(r.get("target_id") or r["question_id"]).split("/")[0] for r in rows})
    meta = [{"id": r["id"], "target_id": r.get("target_id") or r["question_id"], "split": r["split"], "use": r["use"],
             "band": band_index(r["band"]), "target_kind": r.get("target_kind", "question")} for r in rows]
    np.savez(out / "data.npz", flat=flat, offsets=offsets)
    (out / "rows.json").write_text(json.dumps({"rows": meta, "questions": questions}, ensure_ascii=False), encoding="utf-8")
    weights = {"words": dequantize(f.q4_blocks("emb.word", f.vocab)[vocab]),
               "pos": f.floats("emb.pos").reshape(f.max_positions, f.hidden), "type": f.floats("emb.type")[:f.hidden],
               "emb.ln.w": f.floats("emb.ln.w"), "emb.ln.b": f.floats("emb.ln.b")}
    for layer in range(f.layers):
        for name in LINEARS:
            key = f"l{layer}.{name}"
            rows_n = f.ffn if name == "fi" else f.hidden
            weights[key + ".w"] = np.asarray(f.q4_blocks(key + ".w", rows_n))
            weights[key + ".b"] = f.floats(key + ".b")
        for ln in ("aln", "oln"):
            weights[f"l{layer}.{ln}.w"] = f.floats(f"l{layer}.{ln}.w")
            weights[f"l{layer}.{ln}.b"] = f.floats(f"l{layer}.{ln}.b")
    config = np.array([f.hidden, f.layers, f.heads, f.ffn], np.int64)
    np.savez(out / "base.npz", config=config, eps=np.float32(f.eps), **weights)
    lengths = np.diff(offsets)
    print(f"exported {len(rows)} rows ({sum(r['use'] == 'fit' for r in rows)} to fit), vocab {len(vocab)}, "
          f"tokens p50 {int(np.median(lengths))} max {lengths.max()} -> {out}")


# ---------------------------------------------------------------- training (PyTorch, on the GPU machine; besides
# PyTorch it needs only numpy: the modules it imports from interviewer/ import nothing else)

def build_model(base: dict, torch):
    from interviewer.search.embedding import dequantize

    nn, F = torch.nn, torch.nn.functional
    hidden, layers, heads, _ffn = (int(v) for v in base["config"])
    eps = float(base["eps"])

    class Lora(nn.Module):
        def __init__(self, w: np.ndarray, b: np.ndarray):
            super().__init__()
            self.register_buffer("w", torch.tensor(w))
            self.register_buffer("b", torch.tensor(b))
            self.a = nn.Parameter(torch.randn(RANK, w.shape[1]) / math.sqrt(w.shape[1]))
            self.bb = nn.Parameter(torch.zeros(w.shape[0], RANK))

        def forward(self, x):
            return F.linear(x, self.w, self.b) + F.linear(F.linear(x, self.a), self.bb) * (ALPHA / RANK)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("words", torch.tensor(base["words"]))
            self.register_buffer("pos", torch.tensor(base["pos"]))
            self.register_buffer("types", torch.tensor(base["type"]))
            self.register_buffer("ln_w", torch.tensor(base["emb.ln.w"]))
            self.register_buffer("ln_b", torch.tensor(base["emb.ln.b"]))
            self.lin = nn.ModuleDict({f"l{i}_{n}": Lora(dequantize(base[f"l{i}.{n}.w"]), base[f"l{i}.{n}.b"])
                                      for i in range(layers) for n in LINEARS})
            for i in range(layers):
                for ln in ("aln", "oln"):
                    for part in ("w", "b"):
                        self.register_buffer(f"l{i}_{ln}_{part}", torch.tensor(base[f"l{i}.{ln}.{part}"]))
            self.head = nn.Linear(hidden, 1)
            self.cuts = nn.Parameter(torch.tensor([-1.0, 0.0, 1.0]))
            self.drop = nn.Dropout(0.1)

        def norm(self, x, key):
            return F.layer_norm(x, (hidden,), getattr(self, key + "_w"), getattr(self, key + "_b"), eps)

        def embed(self, ids):
            x = self.words[ids] + self.pos[:ids.shape[1]][None] + self.types
            return F.layer_norm(x, (hidden,), self.ln_w, self.ln_b, eps)

        def forward(self, x, mask, start=0, stop=layers, pool=True):
            """Layers ``start``..``stop`` over states ``x`` (token ids when ``start`` is 0); pooled score or states."""
            if start == 0:
                x = self.embed(x)
            t = x.shape[1]
            bias = (1.0 - mask[:, None, None, :]) * -1e9
            d = hidden // heads
            for i in range(start, stop):
                def split(y):
                    return y.view(y.shape[0], t, heads, d).transpose(1, 2)
                q, k, v = (split(self.lin[f"l{i}_{n}"](x)) for n in ("q", "k", "v"))
                att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, dim=-1)
                ctx = (att @ v).transpose(1, 2).reshape(x.shape[0], t, hidden)
                x = self.norm(x + self.lin[f"l{i}_ao"](ctx), f"l{i}_aln")
                x = self.norm(x + self.lin[f"l{i}_fo"](F.gelu(self.lin[f"l{i}_fi"](x))), f"l{i}_oln")
            if not pool:
                return x
            pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            return self.head(self.drop(pooled)).squeeze(-1)

    return Encoder()


def fit(data_dir: Path, out: Path, epochs: int = 8, batch: int = 16, lr: float = 4e-4, top: int = 12, seed: int = 0) -> None:
    """``top``: adapt only the top layers (the states below are computed once, frozen: a CPU can train that)."""
    import torch

    from interviewer.grading.cross import ordinal_probabilities

    device = "cuda" if torch.cuda.is_available() else "cpu"
    base = dict(np.load(data_dir / "base.npz"))
    data = np.load(data_dir / "data.npz")
    meta = json.loads((data_dir / "rows.json").read_text(encoding="utf-8"))
    rows, questions = meta["rows"], meta["questions"]
    seqs = [data["flat"][a:b] for a, b in zip(data["offsets"][:-1], data["offsets"][1:])]
    y = np.array([r["band"] for r in rows])
    fit_idx = np.array([i for i, r in enumerate(rows) if r["use"] == "fit"])
    rng = np.random.default_rng(seed)
    fold_of_q = dict(zip(questions, rng.permutation(len(questions)) % FOLDS))
    fold = np.array([fold_of_q[r["target_id"].split("/")[0]] for r in rows])
    start = int(base["config"][1]) - top

    def padded(part):
        t = max(len(seqs[i]) for i in part)
        ids = np.zeros((len(part), t), np.int64)
        mask = np.zeros((len(part), t), np.float32)
        for j, i in enumerate(part):
            ids[j, :len(seqs[i])], mask[j, :len(seqs[i])] = seqs[i], 1
        return torch.tensor(ids, device=device), torch.tensor(mask, device=device)

    states = []
    if start > 0:
        frozen = build_model(base, torch).to(device).eval()
        with torch.no_grad():
            for i in range(len(seqs)):
                ids, mask = padded([i])
                states.append(frozen(ids, mask, stop=start, pool=False)[0])
        del frozen

    def batches(idx, shuffle):
        idx = rng.permutation(idx) if shuffle else idx
        for at in range(0, len(idx), batch):
            part = idx[at:at + batch]
            ids, mask = padded(part)
            if start > 0:
                x = torch.zeros((len(part), ids.shape[1], states[0].shape[-1]), device=device)
                for j, i in enumerate(part):
                    x[j, :len(seqs[i])] = states[i]
                yield part, x, mask
            else:
                yield part, ids, mask

    def train(idx):
        torch.manual_seed(seed)
        model = build_model(base, torch).to(device)
        for key, lin in model.lin.items():
            lin.requires_grad_(int(key[1:].split("_")[0]) >= start)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
        steps = epochs * math.ceil(len(idx) / batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
        levels = torch.arange(3, device=device)
        for _ in range(epochs):
            model.train()
            for part, ids, mask in batches(idx, True):
                with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                    s = model(ids, mask, start=start)
                target = (torch.tensor(y[part], device=device)[:, None] > levels[None]).float()
                cuts, _ = torch.sort(model.cuts)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(s.float()[:, None] - cuts[None], target)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        return model

    def predict(model, idx):
        model.eval()
        out = np.zeros(len(idx))
        with torch.no_grad():
            for part, ids, mask in batches(np.asarray(idx), False):
                s = model(ids, mask, start=start).float().cpu().numpy()
                out[np.searchsorted(idx, part)] = s
        cuts = np.sort(model.cuts.detach().cpu().numpy().astype(np.float64))
        return out, cuts

    def bands(scores, cuts):
        return (scores[:, None] > cuts[None]).sum(1)

    parts = set(PARTS.split(",")) if PARTS else {*map(str, range(FOLDS)), "final"}
    oof = np.zeros(len(rows))
    oof_expected = np.zeros(len(rows))
    held_all = []
    for k in range(FOLDS):
        if str(k) not in parts:
            continue
        held = np.sort(fit_idx[fold[fit_idx] == k])
        held_all += held.tolist()
        model = train(fit_idx[fold[fit_idx] != k])
        s, cuts = predict(model, held)
        oof[held] = bands(s, cuts)
        oof_expected[held] = [ordinal_probabilities(v, cuts) @ np.arange(4) for v in s]
        print(f"fold {k}: exact {np.mean(oof[held] == y[held]):.3f}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    part = {"oof": {rows[i]["id"]: round(float(oof_expected[i]), 4) for i in held_all},
            "oof_band": {rows[i]["id"]: int(oof[i]) for i in held_all}}
    if "final" not in parts:
        (out / f"part-{'-'.join(sorted(parts))}.json").write_text(json.dumps(part), encoding="utf-8")
        return
    model = train(fit_idx)
    measure = np.array([i for i, r in enumerate(rows) if r["use"] == "measure"])
    s, cuts = predict(model, measure)
    report = {"settings": {"rank": RANK, "alpha": ALPHA, "epochs": epochs, "batch": batch, "lr": lr, "folds": FOLDS, "top_layers": top,
                           "seed": seed, "fitted_rows": int(len(fit_idx))}}
    pred = bands(s, cuts)
    for split in ("heldout", "blind"):
        for kind in ("question", "follow"):
            sel = [j for j, i in enumerate(measure) if rows[i]["split"] == split
                   and (rows[i]["target_kind"] == "question") == (kind == "question")]
            if sel:
                t = y[measure[sel]]
                report[f"{split}/{kind}"] = {"n": len(sel), "exact": round(float(np.mean(pred[sel] == t)), 3),
                                             "within_one": round(float(np.mean(abs(pred[sel] - t) <= 1)), 3)}
    print(json.dumps(report, ensure_ascii=False), flush=True)
    scale = ALPHA / RANK
    arrays = {"head.w": model.head.weight.detach().cpu().numpy()[0].astype(np.float32),
              "head.b": model.head.bias.detach().cpu().numpy().astype(np.float32)[0], "head.cuts": cuts.astype(np.float32)}
    for key, lin in model.lin.items():
        if int(key[1:].split("_")[0]) < start:
            continue
        name = key.replace("_", ".", 1)
        arrays[name + ".a"] = lin.a.detach().cpu().numpy().astype(np.float16)
        arrays[name + ".b"] = (lin.bb.detach().cpu().numpy() * scale).astype(np.float16)
    np.savez_compressed(out / "cross.npz", **arrays)
    (out / "final.json").write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    if len(parts) == FOLDS + 1:  # the whole run: its folds are one part, joined as any run in parts is
        (out / "part-all.json").write_text(json.dumps(part), encoding="utf-8")
        merge(data_dir, out)


def merge(data_dir: Path, out: Path) -> None:
    """The report of a fit run in parts: every fold's out-of-fold predictions, their agreement with the labels, and
    the final model's settings and measured splits (``cross-report.json``, what the calibrator reads)."""
    rows = json.loads((data_dir / "rows.json").read_text(encoding="utf-8"))["rows"]
    band = {r["id"]: r["band"] for r in rows if r["use"] == "fit"}
    oof, oof_band = {}, {}
    for path in sorted(out.glob("part-*.json")):
        part = json.loads(path.read_text(encoding="utf-8"))
        oof.update(part["oof"])
        oof_band.update(part["oof_band"])
    if set(oof) != set(band):
        raise SystemExit(f"{len(band) - len(set(oof) & set(band))} fitted rows have no out-of-fold prediction: a fold is missing")
    got, want = np.array([oof_band[i] for i in band]), np.array(list(band.values()))
    report = {"oof": {i: oof[i] for i in band}, "oof_exact": round(float(np.mean(got == want)), 3),
              "oof_within_one": round(float(np.mean(abs(got - want) <= 1)), 3),
              **json.loads((out / "final.json").read_text(encoding="utf-8"))}
    (out / "cross-report.json").write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "oof"}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["export"]:
        export(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["merge"]:
        merge(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1:2] == ["fit"]:
        fit(Path(sys.argv[2]), Path(sys.argv[3]), *(float(a) if "." in a else int(a) for a in sys.argv[4:]))
    else:
        raise SystemExit(__doc__)
