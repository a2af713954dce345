"""How far can out-of-scope detection go on frozen all-MiniLM-L6-v2 embeddings? A probe for #18.

usage: HF_HUB_OFFLINE=1 python scripts/oos-ceiling-probe.py MODEL_DIR SPLIT_DIR [SPLIT_DIR ...]

Each SPLIT_DIR holds `train.csv` and `test.csv` written by
`cargo run --release -p jamuna-ai-worker --example split_holdout -- train.csv 8 SEED DIR`
(10% of each intent's rows to the test set, plus every row of 8 whole intents relabelled
`oos`). Needs torch, transformers and scikit-learn (the venv of scripts/bench-vs-st.sh).

A measurement outside the product, on the product's weights. Every score is judged the
way `jamuna eval` judges the product: AUROC (in scope vs out of scope) and the in-scope
accuracy at 80% OOS recall (answered, with the right intent, above the threshold that
hands off 80% of the OOS rows). The intent is a logistic regression's on the normalised
last-layer mean-pooled embedding (the product's embedding). It prints, per split and as
the mean over the splits:

1. `nearest`: the cosine to the nearest training example (Sun et al. 2022), the best
   single score the product has.
2. Holistic sentence embeddings (Chen et al., Findings of EMNLP 2022, "Avg-Avg"): the mean
   over layers of the mean-pooled token states, scored by nearest cosine and by
   Mahalanobis distance (shared Ledoit-Wolf covariance), for layers 1–6 and 4–6.
3. Pseudo-outliers (Zhan et al., ACL 2021): convex mixtures of two training examples of
   different intents as an extra `oos` class of the logistic regression; score 1 − p(oos).
4. The ceiling a product cannot have: the same logistic regression given four fifths of
   the held-out intents' own rows as an `oos` class (5-fold over those rows). It shows
   what the embeddings could separate if the unknown intents were known in advance.
"""
import csv, os, sys

import numpy as np
import torch
from sklearn.covariance import LedoitWolf
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from transformers import BertModel, PreTrainedTokenizerFast


def read(path):
    rows = list(csv.DictReader(open(path)))
    return [r["text"] for r in rows], np.array([r["category"] for r in rows])


def measures(score, right, oos):
    """score: higher = more in scope; right: the intent is right; oos: mask."""
    auroc = roc_auc_score(~oos, score)
    o = np.sort(score[oos])
    t80 = o[int(np.ceil(0.80 * len(o))) - 1]  # hands off 80% of the OOS rows
    return auroc, float(np.sum(right[~oos] & (score[~oos] > t80)) / np.sum(~oos))


def nrm(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def layer_pools(tok, bert, texts):
    """(n, 7, 384): the mean-pooled token states after the embeddings and each of the 6 layers."""
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), 128):
            b = tok(texts[i : i + 128], padding=True, truncation=True, max_length=128, return_tensors="pt", return_token_type_ids=True)
            r = bert(**b, output_hidden_states=True)
            m = b["attention_mask"].unsqueeze(-1).float()
            out.append(torch.stack([(h * m).sum(1) / m.sum(1) for h in r.hidden_states], 1).numpy())
    return np.concatenate(out)


def mahalanobis(tr, ytr, te):
    classes = sorted(set(ytr))
    mu = np.stack([tr[ytr == c].mean(0) for c in classes])
    centred = tr - mu[np.searchsorted(classes, ytr)]
    w = np.linalg.cholesky(LedoitWolf().fit(centred).precision_)
    zt, zm = te @ w, mu @ w
    return -((zt[:, None, :] - zm[None]) ** 2).sum(-1).min(1)


def lr(x, y):
    return LogisticRegression(max_iter=3000, C=10.0).fit(x, y)


def split_scores(tok, bert, split):
    tr_x, ytr = read(os.path.join(split, "train.csv"))
    te_x, yte = read(os.path.join(split, "test.csv"))
    trh, teh = layer_pools(tok, bert, tr_x), layer_pools(tok, bert, te_x)
    oos = yte == "oos"
    tr, te = nrm(trh[:, 6]), nrm(teh[:, 6])
    right = lr(tr, ytr).predict(te) == yte
    res = {"nearest": measures((te @ tr.T).max(1), right, oos)}
    for name, sl in (("1-6", slice(1, 7)), ("4-6", slice(4, 7))):
        a, b = nrm(trh[:, sl].mean(1)), nrm(teh[:, sl].mean(1))
        res[f"holistic {name} nearest"] = measures((b @ a.T).max(1), right, oos)
        res[f"holistic {name} mahalanobis"] = measures(mahalanobis(a, ytr, b), right, oos)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(tr), 8000), rng.integers(0, len(tr), 8000)
    keep = ytr[i] != ytr[j]
    i, j = i[keep], j[keep]
    a = rng.uniform(0.3, 0.7, len(i))[:, None]
    mix = nrm(a * tr[i] + (1 - a) * tr[j])
    m = lr(np.concatenate([tr, mix]), np.concatenate([ytr, ["oos"] * len(mix)]))
    p = m.predict_proba(te)
    k = list(m.classes_).index("oos")
    q = p.copy()
    q[:, k] = -1
    res["pseudo-outliers 1-p(oos)"] = measures(1 - p[:, k], m.classes_[q.argmax(1)] == yte, oos)
    # The ceiling: the held-out intents' own rows, 5-fold.
    idx = np.where(oos)[0]
    rng.shuffle(idx)
    folds = []
    for f in np.array_split(idx, 5):
        rest = np.setdiff1d(idx, f)
        m = lr(np.concatenate([tr, te[rest]]), np.concatenate([ytr, ["oos"] * len(rest)]))
        ev = np.concatenate([np.where(~oos)[0], f])
        p = m.predict_proba(te[ev])
        k = list(m.classes_).index("oos")
        q = p.copy()
        q[:, k] = -1
        folds.append(measures(1 - p[:, k], m.classes_[q.argmax(1)] == yte[ev], yte[ev] == "oos"))
    res["ceiling: told the unknown intents"] = tuple(np.mean(folds, 0))
    return res


def main():
    model_dir, splits = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(os.cpu_count() or 2)
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"))
    tok.pad_token = "[PAD]"
    bert = BertModel.from_pretrained(model_dir, add_pooling_layer=False)
    bert.eval()
    runs = []
    for split in splits:
        res = split_scores(tok, bert, split)
        runs.append(res)
        for k, (auroc, acc80) in res.items():
            print(f"{split}  {k:36s} AUROC {auroc:.3f}  acc@80% OOS recall {acc80:.1%}", flush=True)
    for k in runs[0]:
        auroc, acc80 = np.mean([r[k] for r in runs], 0)
        print(f"mean  {k:36s} AUROC {auroc:.3f}  acc@80% OOS recall {acc80:.1%}")


if __name__ == "__main__":
    main()
