"""Protocol-aware search of the per-layer pruning and degree thresholds.

CipherPrune's third contribution: instead of hand-set thresholds, learn for
every encoder layer l a pruning threshold theta_l (a token is kept if its
importance score exceeds it) and a degree threshold beta_l (a kept token uses
the high-degree GELU/exp polynomials if its score exceeds it) by gradient
descent, with a loss that rewards what the private protocol pays for.

The driver is ``go run ./cmd/cipherprune search``: it writes a search spec
(the approximation registry with every polynomial's coefficients, exported
by the Go registry, the softmax shift and the cost model as the coefficients
of a polynomial in the per-layer token counts) and runs::

    /usr/bin/python3 -m models.training.search --model DIR --task sentiment \\
        --spec SPEC.json --out DIR --lambda 1 --max-drop 0.01

Steps:

1. The weights are frozen (the model's fp16 checkpoint, in eval mode). The
   forward pass evaluates every nonlinearity with the Go registry's
   polynomials (``Registry``), in float32 with the two large ones (GELU and
   exp) tabulated on a fine grid for speed, and applies soft masks: the
   importance score s_j of token j is the attention it receives averaged
   over heads and alive query rows; m_j = sigmoid((ln s_j - ln theta_l)/T)
   multiplies the token's weight as a key in every later softmax (pruned
   tokens stay pruned: the weights multiply), g_j = sigmoid((ln s_j -
   ln beta_l)/T) blends the high- and low-degree polynomials of the token's
   rows. The thresholds are learned in log space, so one temperature fits
   every input length; ln s > ln theta is the same test as s > theta.
2. Loss: cross-entropy (to the labels and, with weight --distill, to the
   exact model's predictions) + lambda * expected cost / unpruned cost, where the
   cost of a layer is the Go cost model's polynomial in the expected counts
   (attention quadratic in the kept tokens, the rest linear; softmax and
   GELU terms split by the expected number of high-degree tokens). The
   temperature is annealed geometrically from --t0 to --t1.
3. The thresholds are hardened (m, g in {0, 1}) and checked on the
   validation split against the exact model: while the accuracy drop
   exceeds --max-drop (or, with --min-agreement, the share of validation
   inputs whose label equals the exact model's is below it), every
   threshold is lowered by --backoff (x0.8).
   --lambda may list several values: each is searched this way; of those
   that meet both, the ones whose modelled validation cost is within
   --cost-tolerance (0.01 of the unpruned cost) of the cheapest tie, and the
   one that keeps the most tokens among them is kept.
4. Outputs in --out: prune.json (thresholds and how they were found) and
   prune_golden.json: for the first test inputs, padded to the model's
   maximum length, the hard-mask logits and per-layer counts of the float64
   approximate forward with exactly the Go polynomials (Clenshaw, same
   clamping), which the Go golden test reproduces.

The state (thresholds, optimizer, step, random generator) is checkpointed to
--checkpoint-dir (one subdirectory per lambda) and a rerun of the same command
resumes from it; a finished lambda's result is kept there too and reused
(--fresh ignores both).
"""

import argparse
import hashlib
import json
import math
import os
import random
import shlex
import sys
import time

import torch
from torch.nn import functional as F

from . import bert, safetensors_io, train, wordpiece

SPEC_FORMAT = "cipherprune-search-spec/v1"
REGISTRY_FORMAT = "cipherprune-approx-registry/v1"
TABLE_POINTS = 1 << 16  # grid of the tabulated GELU and exp (linear interpolation)
GOLDEN_COUNT = 32
GOLDEN_FILE = "prune_golden.json"
PRUNE_FILE = "prune.json"
MIN_SCORE = 1e-30  # floor of a score before its logarithm (padding scores 0)
MIN_THETA = 1e-3  # prune.MinTheta: a hard threshold at or below it prunes nothing, degrees carried


def log(msg):
    """Writes a timestamped progress line to stderr."""
    train.log(msg)


# -- the approximation registry ---------------------------------------------------


class Recipe:
    """One polynomial recipe of the Go registry (models/approx, recipeJSON).

    eval reproduces the Go float64 evaluator operation by operation: clamp x
    to the interval, t = scalar*x + constant, Clenshaw's recurrence, then the
    post-processing (squarings or Newton steps, output scale).
    """

    def __init__(self, d):
        self.func = d["func"]
        self.variant = d["variant"]
        self.a, self.b = float(d["interval"][0]), float(d["interval"][1])
        self.scalar, self.constant = float(d["scalar"]), float(d["constant"])
        self.coeffs = [float(c) for c in d["coeffs"]]
        self.post = d["post"]
        self.steps = int(d["steps"])
        self.input_scale = float(d["input_scale"])
        self.output_scale = float(d["output_scale"])
        self._tables = {}

    def key(self):
        """Everything that determines the recipe's values (to detect High == Low)."""
        return (self.a, self.b, tuple(self.coeffs), self.post, self.steps, self.input_scale)

    def clenshaw(self, t):
        """Evaluates sum_k c_k T_k(t) in the Go evaluator's order of operations."""
        c = self.coeffs
        b1 = torch.zeros_like(t)
        b2 = torch.zeros_like(t)
        t2 = 2 * t
        for k in range(len(c) - 1, 0, -1):
            b1, b2 = (c[k] + t2 * b1) - b2, b1
        return (c[0] + t * b1) - b2

    def post_process(self, x, y):
        """Applies the recipe's post-processing to y = p(x)."""
        if self.post == "square":
            for _ in range(self.steps):
                y = y * y
        elif self.post == "newton_inverse":
            u = self.input_scale * x
            for _ in range(self.steps):
                y = y * (2 - u * y)
            y = y * self.output_scale
        elif self.post == "newton_invsqrt":
            h = (self.input_scale / 2) * x
            for _ in range(self.steps):
                y = 1.5 * y - (h * y) * (y * y)
            y = y * self.output_scale
        elif self.post != "none":
            raise ValueError("unknown post-processing %r" % self.post)
        return y

    def eval(self, x):
        """The recipe at x (a tensor), clamped to the interval, as Go computes it."""
        x = x.clamp(self.a, self.b)
        return self.post_process(x, self.clenshaw(self.scalar * x + self.constant))

    def table(self, dtype):
        """The recipe tabulated on TABLE_POINTS + 1 equally spaced points (float64 values)."""
        if dtype not in self._tables:
            grid = torch.linspace(self.a, self.b, TABLE_POINTS + 1, dtype=torch.float64)
            self._tables[dtype] = self.eval(grid).to(dtype)
        return self._tables[dtype]

    def eval_table(self, x):
        """The recipe at x by linear interpolation of its table (differentiable in x).

        The grid step is (b - a)/65536, so the interpolation error (h^2/8 times
        the second derivative) is far below the polynomials' own errors.
        """
        return self.lookup(self.grid_index(x), x.dtype)

    def grid_index(self, x):
        """(cell index, fraction within the cell) of x on the table's grid."""
        u = (x.clamp(self.a, self.b) - self.a) * (TABLE_POINTS / (self.b - self.a))
        i = u.detach().floor().clamp_(0, TABLE_POINTS - 1)
        return i.long(), u - i

    def lookup(self, index, dtype):
        """Interpolates the table at a grid_index (the same for both variants of a function)."""
        i, frac = index
        tab = self.table(dtype)
        if (dtype, "slope") not in self._tables:
            self._tables[(dtype, "slope")] = tab[1:] - tab[:-1]
        return tab[i] + frac * self._tables[(dtype, "slope")][i]


class Registry:
    """The resolved Go approximation registry (Registry.MarshalJSON output)."""

    def __init__(self, doc):
        if doc.get("format") != REGISTRY_FORMAT:
            raise ValueError("registry format %r, want %r" % (doc.get("format"), REGISTRY_FORMAT))
        self.recipes = {}
        for d in doc["recipes"]:
            self.recipes[(d["func"], d["variant"])] = Recipe(d)
        for fn in ("gelu", "exp", "reciprocal", "invsqrt", "tanh"):
            for v in ("high", "low"):
                if (fn, v) not in self.recipes:
                    raise ValueError("registry lacks %s/%s" % (fn, v))

    def recipe(self, fn, variant="high"):
        """Returns the recipe of function fn ("gelu", "exp", ...), variant "high" or "low"."""
        return self.recipes[(fn, variant)]

    def same_variants(self, fn):
        """Reports whether fn's low variant is the high one."""
        return self.recipe(fn, "high").key() == self.recipe(fn, "low").key()


class Nonlinear:
    """Evaluates the registry's recipes in a forward pass.

    exact=True evaluates every polynomial by Clenshaw (the Go evaluator's
    arithmetic; use float64); otherwise GELU and exp, which run on the large
    tensors, are interpolated from tables. g, where given, is each row's
    weight of the high degree (1: high, 0: low); hard=True selects instead of
    blending so that g in {0, 1} gives exactly one variant's values.
    """

    TABULATED = ("gelu", "exp")

    def __init__(self, registry, shift, exact=False):
        self.reg = registry
        self.shift = float(shift)
        self.exact = exact

    def __call__(self, fn, x, g=None, hard=False):
        """fn at x; g (broadcastable to x) blends or selects the degrees."""
        both = g is not None and not self.reg.same_variants(fn)
        rh, rl = self.reg.recipe(fn, "high"), self.reg.recipe(fn, "low")
        if not self.exact and fn in self.TABULATED:
            index = rh.grid_index(x)  # both variants share the interval
            hi = rh.lookup(index, x.dtype)
            lo = rl.lookup(index, x.dtype) if both else None
        else:
            hi = rh.eval(x)
            lo = rl.eval(x) if both else None
        if not both:
            return hi
        if hard:
            return torch.where(g > 0.5, hi, lo)
        return lo + g * (hi - lo)


# -- the masked forward pass --------------------------------------------------------


def layer_norm(x, ln, nl, g, hard):
    """LayerNorm as the Go approximate forward computes it: 1/sqrt by the registry."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    r = nl("invsqrt", var + ln.eps, None if g is None else g.unsqueeze(-1), hard)
    return (x - mean) * r * ln.weight + ln.bias


def attention(layer, x, alive, g, nl, hard, cls_only=False):
    """One attention block with key weights alive [B, n] and query-row degrees g [B, n].

    Returns (block output [B, n, d], probabilities [B, heads, n, n]). A key of
    weight 0 is removed exactly: its exponential is multiplied by 0 before
    the row sum. cls_only computes the CLS row only (rows are independent
    given the keys; the last layer needs no other).
    """
    sa = layer.attention.self
    k, v = sa._heads(sa.key(x)), sa._heads(sa.value(x))
    if cls_only:
        x, g = x[:, :1], g[:, :1]
    b, n, _ = x.shape
    q = sa._heads(sa.query(x))
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(sa.head_size)
    gq = g[:, None, :, None]
    e = nl("exp", scores - nl.shift, gq, hard) * alive[:, None, None, :]
    r = nl("reciprocal", e.sum(-1, keepdim=True), gq, hard)
    probs = e * r
    ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, n, sa.num_heads * sa.head_size)
    out = layer.attention.output
    h = layer_norm(out.dense(ctx) + x, out.LayerNorm, nl, g, hard)
    return h, probs


def feed_forward(layer, h, g, nl, hard):
    """One feed-forward block with row degrees g [B, n]."""
    inter = nl("gelu", layer.intermediate.dense(h), g.unsqueeze(-1), hard)
    return layer_norm(layer.output.dense(inter) + h, layer.output.LayerNorm, nl, g, hard)


def importance(probs, alive):
    """Scores [B, n]: attention received, averaged over heads and alive query rows."""
    heads = probs.shape[1]
    received = (probs * alive[:, None, :, None]).sum(dim=(1, 2))
    return received / (heads * alive.sum(-1, keepdim=True))


def masked_forward(model, nl, ids, attn, log_theta, log_beta, temperature=1.0, hard=False):
    """The approximate forward with pruning and degree masks.

    log_theta and log_beta hold one entry per layer (the last layer's are
    unused: after its attention block only CLS continues, as in the Go
    forward). Returns (logits [B, labels], counts): counts is a list of
    per-layer (in, kept, high) tensors [B], expected counts if soft, in the
    sense of prune.LayerCounts.
    """
    bm = model.bert
    cfg = model.config
    layers = bm.encoder.layer
    x = bm.embeddings(ids)
    alive = attn.to(x.dtype)
    b, n = alive.shape
    g = torch.ones_like(alive)
    one = torch.ones(b, dtype=x.dtype)
    cls = torch.zeros_like(alive)
    cls[:, 0] = 1
    counts = []
    for l, layer in enumerate(layers):
        last = l == cfg.num_hidden_layers - 1
        h, probs = attention(layer, x, alive, g, nl, hard, cls_only=last)
        n_in = alive.sum(-1)
        if last:
            counts.append((n_in, one, one))
            x = feed_forward(layer, h, torch.ones(b, 1, dtype=x.dtype), nl, hard)
            break
        s = importance(probs, alive)
        ls = s.clamp_min(MIN_SCORE).log()
        if hard and not bool(log_theta[l].exp() > MIN_THETA):
            # As the engine: such a layer prunes nothing and its rows keep
            # the degrees the previous pruning layer gave them (g as it is).
            m = torch.ones_like(alive)
        elif hard:
            m = (s > log_theta[l].exp()).to(x.dtype)
            g = (s > log_beta[l].exp()).to(x.dtype)
        else:
            m = torch.sigmoid((ls - log_theta[l]) / temperature)
            g = torch.sigmoid((ls - log_beta[l]) / temperature)
        m = torch.maximum(m, cls)
        g = torch.maximum(g, cls)
        alive = alive * m
        counts.append((n_in, alive.sum(-1), (alive * g).sum(-1)))
        x = feed_forward(layer, h, g, nl, hard)
    pooled = nl("tanh", bm.pooler.dense(x[:, 0]))
    return model.classifier(pooled), counts


# -- the cost model -------------------------------------------------------------------


class Cost:
    """The Go cost model as a polynomial in one layer's counts (prune.CostPolynomial).

    The last layer computes CLS alone (last_layer). Other layers:
    layer cost = in_sq*in^2 + in_in_high*in*in_high + in*in + kept*kept +
    kept_high*kept_high (+ compare*in + compare_layer where thresholds are
    compared, + in_split when in_high < in, + kept_split when kept_high <
    kept), plus head for the pooler and classifier; in_high is the previous
    layer's high count (all of in at layer 0). The three floors are steps:
    they count in the cost, not in its gradient.
    """

    FIELDS = ("in_sq", "in_in_high", "in", "compare", "kept", "kept_high", "head")
    # The floors of cost model v2 (omitted by Go when zero).
    OPTIONAL = ("compare_layer", "in_split", "kept_split")

    def __init__(self, d):
        for f in self.FIELDS:
            setattr(self, "c_" + f, float(d[f]))
        for f in self.OPTIONAL:
            setattr(self, "c_" + f, float(d.get(f, 0.0)))

    def layer(self, n_in, in_high, kept, kept_high, compared):
        """The cost of one layer (tensors or floats)."""
        c = (self.c_in_sq * n_in * n_in + self.c_in_in_high * n_in * in_high + self.c_in * n_in
             + self.c_kept * kept + self.c_kept_high * kept_high)
        if compared:
            c = c + self.c_compare * n_in + self.c_compare_layer
        return c + self.c_in_split * _less(in_high, n_in) + self.c_kept_split * _less(kept_high, kept)

    def last_layer(self, n_in, kept, kept_high):
        """The cost of the model's last layer (prune.CostPolynomial.EvalLast):
        CLS is its one query, so the attention's squared terms count n_in once."""
        return ((self.c_in_sq + self.c_in_in_high + self.c_in) * n_in
                + self.c_kept * kept + self.c_kept_high * kept_high)

    def total(self, counts, compared=True):
        """Cost of a schedule: counts is a list of per-layer (in, kept, high)."""
        total = self.c_head
        prev_high = None
        for l, (n_in, kept, high) in enumerate(counts):
            if l == len(counts) - 1:
                total = total + self.last_layer(n_in, kept, high)
                break
            in_high = n_in if prev_high is None else prev_high
            total = total + self.layer(n_in, in_high, kept, high, compared)
            prev_high = high
        return total

    def baseline(self, n, layers):
        """Cost of the unpruned engine on n tokens (prune.BaselineCounts)."""
        counts = [(n, n, n)] * (layers - 1) + [(n, n * 0 + 1, n * 0 + 1)]
        return self.total(counts, compared=False)


def _less(a, b):
    """1 where a < b, else 0: a float, or a tensor of the operands' dtype (a step: no gradient)."""
    if torch.is_tensor(a) or torch.is_tensor(b):
        ref = a if torch.is_tensor(a) else b
        return (torch.as_tensor(a) < torch.as_tensor(b)).to(ref.dtype)
    return 1.0 if a < b else 0.0


# -- data, model and evaluation -----------------------------------------------------------


def load_model(model_dir, dtype):
    """Loads a Hugging Face layout checkpoint; returns (model in eval mode, config, tokenizer)."""
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        hf = json.load(f)
    cfg = bert.BertConfig.from_hf_dict(hf)
    model = bert.BertForSequenceClassification(cfg)
    tensors, _ = safetensors_io.load_file(os.path.join(model_dir, "model.safetensors"))
    model.load_state_dict({k: v.to(dtype) for k, v in tensors.items()})
    model = model.to(dtype)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    tok = wordpiece.Tokenizer.from_file(os.path.join(model_dir, "vocab.txt"))
    tok = tok.with_truncation(hf.get("truncation_head_tokens"), cfg.max_position_embeddings)
    return model, cfg, tok


def encode_split(tok, data_dir, task, split, max_len):
    """Returns (list of id lists cut to max_len, labels) of a split."""
    rows = train.read_split(data_dir, task, split)
    return [tok.encode(t, max_len) for t, _ in rows], [l for _, l in rows]


def batches_by_length(seqs, batch):
    """Index batches of similar length, in a fixed order."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    return [order[s:s + batch] for s in range(0, len(order), batch)]


@torch.no_grad()
def evaluate(model, nl, tok, seqs, labels, log_theta=None, log_beta=None, batch=32, cost=None):
    """Accuracy and mean per-layer counts of the hard-mask forward (exact model if thresholds are None).

    Returns (accuracy, predictions, counts as a list of per-layer [in, kept, high]
    means, modelled cost over the unpruned engine's at natural length, if cost is given).
    """
    preds = [0] * len(seqs)
    sums = None
    total, base = 0.0, 0.0
    for idx in batches_by_length(seqs, batch):
        ids, attn = train.collate([seqs[i] for i in idx], tok.pad_id)
        if log_theta is None:
            logits = model(ids, attn)
            counts = []
        else:
            logits, counts = masked_forward(model, nl, ids, attn, log_theta, log_beta, hard=True)
        for i, p in zip(idx, logits.argmax(-1).tolist()):
            preds[i] = p
        if cost is not None and counts:
            total += float(cost.total(counts).sum())
            base += float(cost.baseline(attn.sum(-1).to(torch.float64), len(counts)).sum())
        c = [[float(t.sum()) for t in layer] for layer in counts]
        sums = c if sums is None else [[a + b for a, b in zip(x, y)] for x, y in zip(sums, c)]
    acc = sum(int(p == y) for p, y in zip(preds, labels)) / max(1, len(labels))
    means = [[v / max(1, len(seqs)) for v in layer] for layer in (sums or [])]
    return acc, preds, means, (total / base if base > 0 else 1.0)


# -- the search -------------------------------------------------------------------------------


class Search:
    """The resumable state of one threshold search."""

    def __init__(self, args, model, cfg, tok, nl, cost, data):
        self.args, self.model, self.cfg, self.tok, self.nl, self.cost = args, model, cfg, tok, nl, cost
        self.train_seqs, self.train_labels = data
        L = cfg.num_hidden_layers
        mean_len = sum(len(s) for s in self.train_seqs) / max(1, len(self.train_seqs))
        init = math.log(args.init_scale / mean_len)
        self.log_theta = torch.full((L,), init, dtype=torch.float32, requires_grad=True)
        self.log_beta = torch.full((L,), init, dtype=torch.float32, requires_grad=True)
        self.opt = torch.optim.Adam([self.log_theta, self.log_beta], lr=args.lr)
        self.rng = random.Random(args.seed)
        self.state = {"step": 0, "seconds": 0.0, "history": []}
        self.ckpt_dir = args.ckpt_dir_lam
        self.ckpt = os.path.join(self.ckpt_dir, "search.pt")
        self.last_save = time.time()

    def save(self):
        """Writes the resumable state."""
        os.makedirs(self.ckpt_dir, exist_ok=True)
        blob = {"fingerprint": self.args.fingerprint, "theta": self.log_theta.detach().clone(),
                "beta": self.log_beta.detach().clone(), "opt": self.opt.state_dict(),
                "rng": self.rng.getstate(), "state": self.state}
        torch.save(blob, self.ckpt + ".tmp")
        os.replace(self.ckpt + ".tmp", self.ckpt)
        self.last_save = time.time()

    def try_resume(self):
        """Resumes from the checkpoint if one with the same settings exists."""
        if not os.path.exists(self.ckpt):
            return False
        blob = torch.load(self.ckpt)
        if blob["fingerprint"] != self.args.fingerprint:
            raise SystemExit("checkpoint %s was made with other settings; rerun with --fresh" % self.ckpt)
        with torch.no_grad():
            self.log_theta.copy_(blob["theta"])
            self.log_beta.copy_(blob["beta"])
        self.opt.load_state_dict(blob["opt"])
        self.rng.setstate(blob["rng"])
        self.state = blob["state"]
        log("resumed from %s at step %d" % (self.ckpt, self.state["step"]))
        return True

    def temperature(self, step):
        """Geometric annealing from t0 to t1 over the steps."""
        a = self.args
        frac = step / max(1, a.steps - 1)
        return a.t0 * (a.t1 / a.t0) ** frac

    def batch(self):
        """A random training batch (ids, attention mask, labels)."""
        idx = [self.rng.randrange(len(self.train_seqs)) for _ in range(self.args.batch)]
        ids, attn = train.collate([self.train_seqs[i] for i in idx], self.tok.pad_id)
        return ids, attn, torch.tensor([self.train_labels[i] for i in idx])

    def run(self):
        """Runs the soft-mask phase to the last step."""
        a, s = self.args, self.state
        L = self.cfg.num_hidden_layers
        while s["step"] < a.steps:
            t0 = time.time()
            temp = self.temperature(s["step"])
            ids, attn, y = self.batch()
            logits, counts = masked_forward(self.model, self.nl, ids, attn, self.log_theta, self.log_beta, temp)
            n = attn.sum(-1).to(logits.dtype)
            ratio = self.cost.total(counts) / self.cost.baseline(n, L)
            ce = F.cross_entropy(logits, y)
            task = ce
            if a.distill > 0:
                with torch.no_grad():
                    teacher = F.softmax(self.model(ids, attn), dim=-1)
                kd = -(teacher * F.log_softmax(logits, dim=-1)).sum(-1).mean()
                task = (1 - a.distill) * ce + a.distill * kd
            loss = task + a.lam * ratio.mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            s["step"] += 1
            s["seconds"] += time.time() - t0
            if s["step"] % a.log_every == 0 or s["step"] == a.steps:
                kept = [float(c[1].sum() / n.sum()) for c in counts]
                high = [float(c[2].sum() / n.sum()) for c in counts]
                rec = {"step": s["step"], "T": round(temp, 4), "ce": round(float(ce), 4),
                       "cost_ratio": round(float(ratio.mean()), 4),
                       "theta": [round(math.exp(v), 6) for v in self.log_theta.tolist()],
                       "beta": [round(math.exp(v), 6) for v in self.log_beta.tolist()],
                       "kept_over_real": [round(v, 3) for v in kept], "high_over_real": [round(v, 3) for v in high]}
                s["history"].append(rec)
                log("search step %d/%d %s" % (s["step"], a.steps, json.dumps(rec)))
            if time.time() - self.last_save > a.checkpoint_seconds:
                self.save()
        self.save()


def hard_thresholds(log_theta, log_beta, layers):
    """The thresholds as prune.json layers: the last layer's are 0 (only CLS continues)."""
    out = []
    for l in range(layers):
        if l == layers - 1:
            out.append({"theta": 0.0, "beta": 0.0})
        else:
            out.append({"theta": min(1.0, math.exp(float(log_theta[l]))),
                        "beta": min(1.0, math.exp(float(log_beta[l])))})
    return out


def to_logs(layers_lit):
    """prune.json layers to (log_theta, log_beta) tensors (log of 0 is -inf: nothing pruned)."""
    th = torch.tensor([math.log(d["theta"]) if d["theta"] > 0 else -math.inf for d in layers_lit])
    be = torch.tensor([math.log(d["beta"]) if d["beta"] > 0 else -math.inf for d in layers_lit])
    return th.double(), be.double()


@torch.no_grad()
def golden(model64, registry, shift, tok, texts, labels, layers_lit, n):
    """Hard-mask float64 logits and counts of the first test inputs padded to n (Clenshaw)."""
    nl = Nonlinear(registry, shift, exact=True)
    th, be = to_logs(layers_lit)
    out = []
    for text, label in zip(texts, labels):
        ids, mask, _ = tok.pad(tok.encode(text, n), n)
        logits, counts = masked_forward(model64, nl, torch.tensor([ids]), torch.tensor([mask]), th, be, hard=True)
        # Go counts every row entering layer 0, padding included (it is pruned there).
        counts[0] = (torch.tensor([float(n)]),) + tuple(counts[0][1:])
        out.append({"text": text, "label": label, "input_ids": ids, "attention_mask": mask,
                    "logits": logits[0].tolist(),
                    "counts": [{"in": int(round(float(a))), "kept": int(round(float(b))), "high": int(round(float(c)))}
                               for a, b, c in counts]})
    return out


def read_spec(path):
    """Reads the search spec written by the Go search command."""
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    if spec.get("format") != SPEC_FORMAT:
        raise SystemExit("%s: format %r, want %r" % (path, spec.get("format"), SPEC_FORMAT))
    return spec


def parse_args(argv):
    """Parses the command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model directory (config.json, model.safetensors, vocab.txt)")
    p.add_argument("--task", required=True, choices=sorted(train.LABELS))
    p.add_argument("--spec", required=True, help="search spec from `cipherprune search` (registry, shift, cost)")
    p.add_argument("--out", help="where prune.json and prune_golden.json go (default --model)")
    p.add_argument("--data-dir", default=os.environ.get("CIPHERPRUNE_DATA")
                   or os.path.join(os.path.expanduser("~"), ".cache", "cipherprune"))
    p.add_argument("--checkpoint-dir", help="resumable state (default ~/.cache/cipherprune-search/<out path>/lambda-<lambda>)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--lambda", dest="lam", default="1",
                   help="weight of the cost term; a comma-separated list runs one search each and keeps the "
                        "cheapest (on validation) that meets --max-drop")
    p.add_argument("--max-drop", type=float, default=0.01,
                   help="largest validation accuracy drop against the exact model")
    p.add_argument("--steps", type=int, default=300, help="soft-mask optimizer steps")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-len", type=int, help="training inputs cut to this many tokens (default: the model's maximum)")
    p.add_argument("--distill", type=float, default=0.5,
                   help="weight of the cross-entropy to the exact model's predictions (the rest: to the labels); "
                        "the training split is fitted closely, so its labels alone say little")
    p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate of ln theta and ln beta")
    p.add_argument("--t0", type=float, default=1.0, help="initial temperature (log-score units)")
    p.add_argument("--t1", type=float, default=0.05, help="final temperature")
    p.add_argument("--init-scale", type=float, default=0.05,
                   help="initial thresholds: init_scale / mean training length (keeps nearly every token)")
    p.add_argument("--backoff", type=float, default=0.8, help="factor applied to the thresholds while the drop is too large")
    p.add_argument("--min-agreement", type=float, default=0.0,
                   help="also back off while fewer validation labels than this share equal the exact model's "
                        "(flips in both directions count, which an accuracy drop can hide)")
    p.add_argument("--max-backoffs", type=int, default=12)
    p.add_argument("--cost-tolerance", type=float, default=0.01,
                   help="with several lambdas: validation costs (relative to the unpruned engine) within this of "
                        "the cheapest are a tie, won by the one that keeps the most tokens")
    p.add_argument("--eval-n", type=int, default=0, help="validate on the first n examples only (0: all)")
    p.add_argument("--golden", type=int, default=GOLDEN_COUNT, help="test inputs in prune_golden.json (0: none)")
    p.add_argument("--golden-only", action="store_true",
                   help="no search: keep the thresholds of OUT/prune.json and rewrite prune_golden.json for the "
                        "spec's registry and shift (after a recalibration that moves no threshold)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--checkpoint-seconds", type=float, default=120)
    return p.parse_args(argv)


def search_one(args, lam, ctx):
    """Runs the search for one lambda, hardens and backs off; returns the candidate record."""
    model, cfg, tok, nl, cost = ctx["model"], ctx["cfg"], ctx["tok"], ctx["nl"], ctx["cost"]
    args.lam = lam
    ckpt = args.checkpoint_dir or os.path.join(os.path.expanduser("~"), ".cache", "cipherprune-search",
                                               os.path.abspath(args.out).strip(os.sep).replace(os.sep, "_"))
    args.ckpt_dir_lam = os.path.join(ckpt, "lambda-%g" % lam)
    settings = {k: v for k, v in sorted(vars(args).items())
                if k not in ("out", "checkpoint_dir", "ckpt_dir_lam", "fresh", "threads", "log_every",
                             "checkpoint_seconds", "golden", "eval_n", "max_drop", "min_agreement", "backoff", "max_backoffs",
                             "cost_tolerance", "spec",  # the spec's path changes per run; its contents count below
                             "lambdas", "fingerprint")}
    settings["spec_cost"] = ctx["spec"]["cost"]
    # A finished search is reused only for the same weights, vocabulary and
    # approximations: a retrained model may keep its path and its shift.
    settings["model_sha256"] = ctx["model_digest"]
    settings["spec_registry_sha256"] = hashlib.sha256(
        json.dumps(ctx["spec"]["registry"], sort_keys=True).encode()).hexdigest()
    settings["softmax_shift"] = nl.shift
    args.fingerprint = json.dumps(settings, sort_keys=True, default=str)
    done_path = os.path.join(args.ckpt_dir_lam, "result.json")
    L = cfg.num_hidden_layers
    layers_lit, seconds, history = None, 0.0, []
    if not args.fresh and os.path.exists(done_path):
        with open(done_path, encoding="utf-8") as f:
            done = json.load(f)
        if done.get("fingerprint") == args.fingerprint:
            if done.get("max_drop") == args.max_drop and done.get("min_agreement", 0.0) == args.min_agreement:
                log("lambda %g: reusing the finished search in %s" % (lam, done_path))
                return done["record"]
            if "hardened" in done:
                # Only the back-off criteria changed: the soft-mask search is
                # the same, so back off again from its hardened thresholds.
                log("lambda %g: reusing the soft-mask search in %s, backing off for the new criteria"
                    % (lam, done_path))
                layers_lit, seconds = done["hardened"], done["record"]["search_seconds"]
                history = done["record"].get("history", [])
    if layers_lit is None:
        search = Search(args, model, cfg, tok, nl, cost, ctx["train"])
        if args.fresh or not search.try_resume():
            log("lambda %g: searching from scratch; checkpoints in %s" % (lam, search.ckpt))
        search.run()
        layers_lit = hard_thresholds(search.log_theta.detach(), search.log_beta.detach(), L)
        seconds, history = search.state["seconds"], search.state["history"][-2:]
        if os.path.exists(search.ckpt):
            os.remove(search.ckpt)
    hardened = layers_lit
    val_seqs, val_labels = ctx["validation"]
    exact_acc, exact_preds = ctx["exact"]
    rec, tried = None, []
    for k in range(args.max_backoffs + 1):
        th, be = to_logs(layers_lit)
        acc, preds, counts, ratio = evaluate(model, nl, tok, val_seqs, val_labels, th.float(), be.float(), cost=cost)
        agree = sum(int(p == q) for p, q in zip(preds, exact_preds)) / max(1, len(preds))
        real = counts[0][0]
        rec = {"lambda": lam, "thresholds": layers_lit, "validation_accuracy": acc,
               "validation_agreement_with_exact": agree,
               "validation_kept_fraction_natural": sum(c[1] for c in counts) / (real * L),
               "validation_high_fraction": sum(c[2] for c in counts) / sum(c[1] for c in counts),
               "validation_relative_cost_natural": ratio,
               "validation_mean_kept": [round(c[1], 2) for c in counts], "backoffs": k,
               "search_seconds": round(seconds, 1), "history": history}
        log("lambda %g, hard thresholds %s: validation accuracy %.4f (exact %.4f, agreement %.4f), "
            "kept fraction %.4f, mean kept per layer %s, relative cost %.4f at natural length"
            % (lam, json.dumps(layers_lit), acc, exact_acc, agree, rec["validation_kept_fraction_natural"],
               rec["validation_mean_kept"], ratio))
        rec["meets_max_drop"] = exact_acc - acc <= args.max_drop + 1e-12
        rec["meets_min_agreement"] = agree >= args.min_agreement - 1e-12
        tried.append(rec)
        if rec["meets_max_drop"] and rec["meets_min_agreement"]:
            break
        if k == args.max_backoffs:
            rec = best_backoff(tried)
            log("lambda %g: no back-off met the targets; keeping back-off %d (agreement %.4f, validation "
                "accuracy %.4f, kept fraction %.4f)" % (lam, rec["backoffs"], rec["validation_agreement_with_exact"],
                                                        rec["validation_accuracy"], rec["validation_kept_fraction_natural"]))
            break
        layers_lit = [{"theta": d["theta"] * args.backoff, "beta": d["beta"] * args.backoff} for d in layers_lit]
    train.write_json(done_path, {"fingerprint": args.fingerprint, "max_drop": args.max_drop,
                                 "min_agreement": args.min_agreement, "hardened": hardened, "record": rec})
    return rec


def best_backoff(tried):
    """The back-off to keep when none met both targets: of those within the
    drop (all if none is), the highest agreement with the exact model, then
    the highest accuracy, then the fewest kept tokens. Backing off only adds
    tokens, and the agreement need not rise with them (spam-mini: 0.9966 at
    the soft search's thresholds, then 0.9915 to 0.9949), so the last one
    tried is not the best."""
    pool = [r for r in tried if r["meets_max_drop"]] or tried
    return max(pool, key=lambda r: (r["validation_agreement_with_exact"], r["validation_accuracy"],
                                    -r["validation_kept_fraction_natural"]))


def choose(candidates, cost_tolerance=0.0):
    """Among the candidates that meet the drop and the agreement, the one
    that prunes least (highest validation kept fraction, then accuracy) of
    those whose validation cost is within cost_tolerance of the cheapest;
    if none meets them, the most accurate.

    The tolerance is a parsimony rule, in the spirit of the one-standard-error
    rule of model selection: modelled costs closer than the cost model's own
    resolution are a tie, and of tied schedules the one that removes fewer
    real tokens risks less accuracy off the validation split."""
    ok = [c for c in candidates if c["meets_max_drop"] and c.get("meets_min_agreement", True)]
    if ok:
        cheapest = min(c["validation_relative_cost_natural"] for c in ok)
        tied = [c for c in ok if c["validation_relative_cost_natural"] <= cheapest + cost_tolerance]
        return max(tied, key=lambda c: (c["validation_kept_fraction_natural"], c["validation_accuracy"],
                                        -c["validation_relative_cost_natural"]))
    return max(candidates, key=lambda c: (c["validation_accuracy"], -c["validation_relative_cost_natural"]))


def write_golden(args, registry, shift, tok, layers_lit, cfg):
    """Writes prune_golden.json: the float64 hard-mask forward on the first test inputs."""
    if args.golden <= 0:
        return
    model64, _, _ = load_model(args.model, torch.float64)
    rows = train.read_split(args.data_dir, args.task, "test")[:args.golden]
    ex = golden(model64, registry, shift, tok, [t for t, _ in rows], [l for _, l in rows], layers_lit,
                cfg.max_position_embeddings)
    train.write_json(os.path.join(args.out, GOLDEN_FILE), {
        "model": os.path.basename(os.path.abspath(args.model)), "task": args.task,
        "n": cfg.max_position_embeddings, "dtype": "float64", "thresholds": layers_lit,
        "softmax_shift": shift, "examples": ex})


def main(argv=None):
    """Runs the search for every lambda and writes prune.json (the chosen one) and prune_golden.json."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.out = args.out or args.model
    args.lambdas = [float(v) for v in args.lam.split(",")]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t_start = time.time()
    spec = read_spec(args.spec)
    registry = Registry(spec["registry"])
    shift = float(spec["softmax_shift"])
    cost = Cost(spec["cost"])
    model, cfg, tok = load_model(args.model, torch.float32)
    if spec.get("layers", cfg.num_hidden_layers) != cfg.num_hidden_layers:
        raise SystemExit("spec is for %d layers, model has %d" % (spec["layers"], cfg.num_hidden_layers))
    max_len = args.max_len or cfg.max_position_embeddings
    command = "/usr/bin/python3 -m models.training.search " + " ".join(shlex.quote(a) for a in argv)
    log("command: " + command)

    if args.golden_only:
        with open(os.path.join(args.out, PRUNE_FILE), encoding="utf-8") as f:
            doc = json.load(f)
        write_golden(args, registry, shift, tok, doc["layers"], cfg)
        log("rewrote %s with the thresholds of %s (%.0f s)"
            % (os.path.join(args.out, GOLDEN_FILE), os.path.join(args.out, PRUNE_FILE), time.time() - t_start))
        return doc

    nl = Nonlinear(registry, shift)
    val_seqs, val_labels = encode_split(tok, args.data_dir, args.task, "validation", cfg.max_position_embeddings)
    if args.eval_n:
        val_seqs, val_labels = val_seqs[:args.eval_n], val_labels[:args.eval_n]
    exact_acc, exact_preds, _, _ = evaluate(model, nl, tok, val_seqs, val_labels)
    ctx = {"model": model, "cfg": cfg, "tok": tok, "nl": nl, "cost": cost, "spec": spec,
           "model_digest": train.model_digest(args.model),
           "train": encode_split(tok, args.data_dir, args.task, "train", max_len),
           "validation": (val_seqs, val_labels), "exact": (exact_acc, exact_preds)}
    candidates = [search_one(args, lam, ctx) for lam in args.lambdas]
    best = choose(candidates, args.cost_tolerance)
    layers_lit = best["thresholds"]
    log("chose lambda %g: %s" % (best["lambda"], json.dumps(layers_lit)))

    os.makedirs(args.out, exist_ok=True)
    doc = {"layers": layers_lit, "search": {
        "method": "soft masks sigmoid((ln s - ln theta)/T) on frozen weights, "
                  "loss = task cross-entropy + lambda * modelled cost / unpruned cost; hard thresholds "
                  "lowered x%g until the validation drop is at most max_drop and the agreement with the "
                  "exact model at least min_agreement; of the lambdas whose validation cost is within "
                  "cost_tolerance of the cheapest, the one keeping the most tokens" % args.backoff,
        "lambda": best["lambda"], "lambdas": args.lambdas, "max_drop": args.max_drop,
        "min_agreement": args.min_agreement, "cost_tolerance": args.cost_tolerance, "steps": args.steps,
        "batch": args.batch, "max_len": max_len, "t0": args.t0, "t1": args.t1, "lr": args.lr,
        "distill": args.distill, "seed": args.seed, "cost_model": spec["cost"].get("source", ""),
        "validation_exact_accuracy": exact_acc, "chosen": best,
        "candidates": [{k: v for k, v in c.items() if k != "history"} for c in candidates],
        "search_seconds": round(sum(c["search_seconds"] for c in candidates), 1),
        "wall_seconds": round(time.time() - t_start, 1), "command": command,
    }}
    train.write_json(os.path.join(args.out, PRUNE_FILE), doc)
    write_golden(args, registry, shift, tok, layers_lit, cfg)
    log("wrote %s (%.0f s)" % (os.path.join(args.out, PRUNE_FILE), time.time() - t_start))
    return doc


if __name__ == "__main__":
    main()
