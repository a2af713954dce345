"""Does fine-tuning MiniLM's top layers separate unknown intents better? A probe for #18.

usage: HF_HUB_OFFLINE=1 python scripts/oos-finetune-probe.py MODEL_DIR SPLIT_DIR [SPLIT_DIR ...]

MODEL_DIR is the model `scripts/fetch-model.sh` unpacks (config.json, model.safetensors,
tokenizer.json); each SPLIT_DIR holds `train.csv` and `test.csv` written by
`cargo run --release -p jamuna-ai-worker --example split_holdout -- train.csv 8 SEED DIR`
(the held-out protocol: 10% of each intent's rows to the test set, plus every row of 8
whole intents relabelled `oos`). Needs torch, transformers and scikit-learn (the
sentence-transformers venv of scripts/bench-vs-st.sh has them).

This is a measurement outside the product: it scores the same simple way before and after
fine-tuning, so the difference is the encoder's. The scores: the cosine to the nearest
training example (kNN, Sun et al. 2022), and a logistic regression's top probability on
the embeddings; the prediction is the logistic regression's. For each it prints AUROC
(in scope vs out of scope), FPR at 95% in-scope recall and the in-scope accuracy at 80%
OOS recall (right and above the threshold that hands off 80% of the OOS rows, as
`jamuna eval` counts it). Fine-tuning trains only the top LAYERS (env, default 2) of the
six, with a supervised contrastive loss (Khosla et al. 2020) plus cross-entropy on the
in-scope training rows, EPOCHS (default 3) epochs of batches of 64; the layers below are
run once and kept.
"""
import csv, os, sys, time, random

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from transformers import BertModel, PreTrainedTokenizerFast

torch.manual_seed(0)
random.seed(0)
np.random.seed(0)
LAYERS = int(os.environ.get("LAYERS", "2"))
EPOCHS = int(os.environ.get("EPOCHS", "3"))
LR = float(os.environ.get("LR", "5e-5"))
TAU = float(os.environ.get("TAU", "0.1"))


def read(path):
    rows = list(csv.DictReader(open(path)))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def measures(score, right, oos):
    """score: higher = more in scope; right: prediction right (in-scope rows); oos: mask."""
    auroc = roc_auc_score(~oos, score)
    ins = np.sort(score[~oos])
    t95 = ins[int(np.floor(0.05 * len(ins)))]  # keeps 95% of in-scope rows
    fpr95 = float(np.mean(score[oos] >= t95))
    o = np.sort(score[oos])
    t80 = o[int(np.ceil(0.80 * len(o))) - 1]  # hands off 80% of OOS rows
    acc80 = float(np.sum(right[~oos] & (score[~oos] > t80)) / np.sum(~oos))
    return auroc, fpr95, acc80


def additive(mask):
    """The padding mask as the layers take it: 0 where a token is, a large negative where padding is."""
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


class Encoder:
    def __init__(self, model_dir):
        self.tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"))
        self.tok.pad_token = "[PAD]"
        self.bert = BertModel.from_pretrained(model_dir, add_pooling_layer=False)
        self.bert.eval()

    def batch(self, texts):
        return self.tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt", return_token_type_ids=True)

    def lower(self, texts, upto):
        """Hidden states after the first `upto` layers, per batch of 64 (kept)."""
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), 64):
                b = self.batch(texts[i : i + 64])
                h = self.bert.embeddings(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"])
                ext = additive(b["attention_mask"])
                for layer in self.bert.encoder.layer[:upto]:
                    r = layer(h, attention_mask=ext)
                    h = r[0] if isinstance(r, tuple) else r
                out.append((h, b["attention_mask"], ext))
        return out

    def upper(self, h, mask, ext, upto):
        for layer in self.bert.encoder.layer[upto:]:
            r = layer(h, attention_mask=ext)
            h = r[0] if isinstance(r, tuple) else r
        m = mask.unsqueeze(-1).float()
        e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(e, dim=-1)


def embed_all(enc, cached, upto):
    with torch.no_grad():
        return torch.cat([enc.upper(h, m, x, upto) for (h, m, x) in cached]).numpy()


def evaluate(name, tr_e, tr_y, te_e, te_y):
    oos = np.array([y == "oos" for y in te_y])
    lr = LogisticRegression(max_iter=2000, C=10.0)
    lr.fit(tr_e, tr_y)
    proba = lr.predict_proba(te_e)
    pred = lr.classes_[proba.argmax(1)]
    right = np.array([p == y for p, y in zip(pred, te_y)])
    nearest = (te_e @ tr_e.T).max(1)
    closed = float(np.mean(right[~oos]))
    res = {"closed": closed}
    for sname, s in [("nearest", nearest), ("lr_p", proba.max(1))]:
        res[sname] = measures(s, right, oos)
    print(
        f"{name}: closed acc {closed:.4f}; "
        + "; ".join(f"{k}: AUROC {v[0]:.4f} FPR95 {v[1]:.3f} acc@80 {v[2]:.4f}" for k, v in res.items() if k != "closed"),
        flush=True,
    )
    return res


def supcon(e, y, tau):
    sim = e @ e.T / tau
    n = e.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    sim = sim.masked_fill(eye, -1e9)
    pos = (y.unsqueeze(0) == y.unsqueeze(1)) & ~eye
    logp = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    cnt = pos.sum(1)
    keep = cnt > 0
    return -((logp * pos).sum(1)[keep] / cnt[keep]).mean()


def main():
    model_dir, splits = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(os.cpu_count() or 2)
    summary = {"frozen": [], "tuned": []}
    for split in splits:
        tr_x, tr_y = read(os.path.join(split, "train.csv"))
        te_x, te_y = read(os.path.join(split, "test.csv"))
        enc = Encoder(model_dir)
        upto = 6 - LAYERS
        t = time.time()
        tr_c, te_c = enc.lower(tr_x, upto), enc.lower(te_x, upto)
        base = evaluate(f"{split} frozen", embed_all(enc, tr_c, upto), tr_y, embed_all(enc, te_c, upto), te_y)
        summary["frozen"].append(base)
        # Fine-tune the top layers on the in-scope training rows only.
        labels = sorted(set(tr_y))
        idx = {l: i for i, l in enumerate(labels)}
        # Re-run the lower layers per training batch of shuffled rows (cached per row).
        rows = []
        for (h, m, x) in tr_c:
            for i in range(h.shape[0]):
                n = int(m[i].sum())
                rows.append((h[i, :n], n))
        ys = torch.tensor([idx[y] for y in tr_y])
        head = torch.nn.Linear(384, len(labels))
        params = [p for l in enc.bert.encoder.layer[upto:] for p in l.parameters()] + list(head.parameters())
        opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
        for layer in enc.bert.encoder.layer[upto:]:
            layer.train()
        order = list(range(len(rows)))
        for epoch in range(EPOCHS):
            random.shuffle(order)
            total = 0.0
            for i in range(0, len(order), 64):
                b = order[i : i + 64]
                L = max(rows[j][1] for j in b)
                h = torch.zeros(len(b), L, 384)
                m = torch.zeros(len(b), L, dtype=torch.long)
                for k, j in enumerate(b):
                    h[k, : rows[j][1]] = rows[j][0]
                    m[k, : rows[j][1]] = 1
                ext = additive(m)
                e = enc.upper(h, m, ext, upto)
                y = ys[b]
                loss = supcon(e, y, TAU) + F.cross_entropy(head(e) / 0.05, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item()
            print(f"  epoch {epoch + 1}: loss {total / (len(order) / 64):.4f} ({time.time() - t:.0f} s)", flush=True)
        for layer in enc.bert.encoder.layer[upto:]:
            layer.eval()
        tuned = evaluate(f"{split} top {LAYERS} tuned", embed_all(enc, tr_c, upto), tr_y, embed_all(enc, te_c, upto), te_y)
        summary["tuned"].append(tuned)
    for k, runs in summary.items():
        mean = lambda f: np.mean([f(r) for r in runs])
        print(
            f"mean {k}: closed {mean(lambda r: r['closed']):.4f}; "
            + "; ".join(
                f"{s}: AUROC {mean(lambda r: r[s][0]):.4f} FPR95 {mean(lambda r: r[s][1]):.3f} acc@80 {mean(lambda r: r[s][2]):.4f}"
                for s in ("nearest", "lr_p")
            )
        )


if __name__ == "__main__":
    main()
