"""A bag-of-words logistic-regression baseline.

Features are the basic (pre-WordPiece) words of the BERT tokenizer
(``wordpiece.basic_tokenize``: cleaned, lowercased, accent-stripped,
punctuation split).  The feature vocabulary is the words of the training split
that occur in at least ``min_df`` training texts (at most ``max_features``,
most frequent first).  Two encodings are tried, binary presence and tf-idf
(sublinear tf, smoothed idf, rows L2-normalized), each with a few L2
strengths; the pair with the best validation accuracy (first one on ties, in
the order tried) is scored on the test split.  The model is a logistic
regression with a bias, fitted to convergence by full-batch L-BFGS in float64.
"""

import collections
import math

import torch

from . import wordpiece

L2_STRENGTHS = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6)
ENCODINGS = ("binary", "tfidf")


class BagOfWords:
    """Maps texts to sparse bag-of-words feature matrices."""

    def __init__(self, train_texts, min_df=1, max_features=30000):
        self.docs_train = [wordpiece.basic_tokenize(t) for t in train_texts]
        df = collections.Counter()
        for words in self.docs_train:
            df.update(set(words))
        kept = sorted((w for w, n in df.items() if n >= min_df), key=lambda w: (-df[w], w))
        kept = kept[:max_features]
        self.index = {w: i for i, w in enumerate(kept)}
        n_docs = len(train_texts)
        self.idf = torch.tensor([math.log((1 + n_docs) / (1 + df[w])) + 1.0 for w in kept],
                                dtype=torch.float64)

    def matrix(self, texts, encoding, docs=None):
        """Returns a sparse [len(texts), features] float64 matrix."""
        if docs is None:
            docs = [wordpiece.basic_tokenize(t) for t in texts]
        rows, cols, vals = [], [], []
        for r, words in enumerate(docs):
            counts = collections.Counter(self.index[w] for w in words if w in self.index)
            if not counts:
                continue
            items = sorted(counts.items())
            if encoding == "binary":
                v = [1.0] * len(items)
            elif encoding == "tfidf":
                v = [(1.0 + math.log(c)) * float(self.idf[i]) for i, c in items]
                norm = math.sqrt(sum(x * x for x in v))
                v = [x / norm for x in v]
            else:
                raise ValueError("unknown encoding %r" % encoding)
            rows += [r] * len(items)
            cols += [i for i, _ in items]
            vals += v
        idx = torch.tensor([rows, cols], dtype=torch.long)
        return torch.sparse_coo_tensor(idx, torch.tensor(vals, dtype=torch.float64),
                                       (len(docs), len(self.index))).coalesce()


def fit_logistic(x, y, l2, max_iter=500):
    """Fits a binary logistic regression; returns (w, b). y holds 0/1 labels."""
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    yf = y.to(torch.float64)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9,
                            tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = torch.sparse.mm(x, w.unsqueeze(1)).squeeze(1) + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, yf) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def accuracy(x, y, w, b):
    """Accuracy of the fitted model on (x, y)."""
    z = torch.sparse.mm(x, w.unsqueeze(1)).squeeze(1) + b
    return float(((z > 0).long() == y).double().mean())


def run(train, validation, test, log=None):
    """Tunes and scores the baseline; each split is a list of (text, label).

    Returns a dict with the chosen encoding and L2 strength, the validation
    and test accuracies and the number of features.
    """
    bow = BagOfWords([t for t, _ in train])
    labels = {name: torch.tensor([l for _, l in split], dtype=torch.long)
              for name, split in (("train", train), ("validation", validation), ("test", test))}
    docs = {"train": bow.docs_train,
            "validation": [wordpiece.basic_tokenize(t) for t, _ in validation],
            "test": [wordpiece.basic_tokenize(t) for t, _ in test]}
    best = None
    for encoding in ENCODINGS:
        mats = {k: bow.matrix(None, encoding, docs=d) for k, d in docs.items()}
        for l2 in L2_STRENGTHS:
            w, b = fit_logistic(mats["train"], labels["train"], l2)
            val = accuracy(mats["validation"], labels["validation"], w, b)
            if log:
                log("baseline %s l2=%g: validation accuracy %.4f" % (encoding, l2, val))
            if best is None or val > best["validation_accuracy"]:
                best = {"encoding": encoding, "l2": l2, "validation_accuracy": val,
                        "test_accuracy": accuracy(mats["test"], labels["test"], w, b),
                        "features": len(bow.index)}
    return best
