"""Train a small BERT classifier from scratch and write a Hugging Face style checkpoint.

Run from the repository root with Debian's interpreter, for example::

    /usr/bin/python3 -m models.training.train --task sentiment --preset sentiment-tiny \\
        --out models/trained/sentiment-tiny
    nohup /usr/bin/python3 -m models.training.train --task spam --preset spam-mini \\
        --out models/trained/spam-mini > /tmp/train-spam.log 2>&1 &

Steps:

1. Read the fixed splits ``<data-dir>/<task>/{train,validation,test}.jsonl``
   (written by ``go run ./cmd/cipherprune data``).
2. Learn a WordPiece vocabulary from the training split only.
3. Score the bag-of-words logistic-regression baseline (``baseline.py``).
4. Masked-LM pre-training on the training texts (15% of the tokens chosen,
   of those 80% -> [MASK], 10% -> a random token, 10% kept), on random
   windows of each text.
5. Fine-tuning for classification with AdamW and a linear warm-up/decay
   schedule; after every epoch the model is scored on the validation split at
   the full length (max_position_embeddings) and the best one is kept.
   Both phases follow a length schedule ("128:2,256:1" = 2 epochs with inputs
   cut to 128 tokens, then 1 epoch at 256), so long inputs are mostly trained
   at short, cheap lengths.
6. Round the best weights to float16 and write, in --out: config.json,
   model.safetensors (F16), vocab.txt, golden.json (float64 logits of the
   rounded model on the first test inputs), tokenizer_golden.json and
   metrics.json (accuracies computed in float64 with the rounded weights).

Training is deterministic for a given seed and can be resumed: the whole
state (weights, optimizer, random generators, position in the epoch, best
model so far) is written to --checkpoint-dir every few minutes and after every
epoch, and a rerun of the same command continues from it (--fresh ignores it).
The checkpoint directory is removed after a successful run.
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

from . import baseline, bert, safetensors_io, wordpiece

LABELS = {"sentiment": ("negative", "positive"), "spam": ("ham", "spam")}
# The unlabelled corpora of the data command (models/dataset.Corpora).
CORPORA = ("sotu", "moby-dick")

PRESETS = {
    "sentiment-tiny": dict(
        layers=2, hidden=128, heads=2, ffn=512, positions=128, vocab_size=4000,
        batch=32, mlm_schedule="128:60", ft_schedule="128:20", mlm_lr=1e-3, lr=2e-4,
        weight_decay=0.01, warmup=0.1, patience=8,
        label_smoothing=0.0, aug_mask=0.1, distill=0.7, dropout=0.1, attn_weight=1.0,
        attn_shift=0.0, attn_lse="0:3", ft_seeds=1,
    ),
    "spam-mini": dict(
        layers=4, hidden=256, heads=4, ffn=1024, positions=512, vocab_size=6000,
        batch=32, mlm_schedule="128:4", ft_schedule="128:3,256:2,512:1", mlm_lr=5e-4, lr=3e-4,
        weight_decay=0.01, warmup=0.1, patience=0,
        label_smoothing=0.0, aug_mask=0.0, distill=0.5, dropout=0.1, attn_weight=1.0,
        # E-mails run to 512 tokens: a near-uniform row over n keys has a
        # log-sum-exp near log(n) (up to 6.2), so the window is wider and
        # shifted; with sentiment's 0:3 the penalty dominated the loss at
        # initialization and the classifier never left the class prior.
        attn_shift=1.5, attn_lse="0:6", ft_seeds=1,
    ),
}

GOLDEN_COUNT = 32
MAX_TEXT_TOKENS = 4096  # tokens of one text kept for MLM windows

TOKENIZER_CASES = [
    "Hello, World!",
    "The café's crème brûlée was NAÏVE... 10/10!!",
    "don't stop-believing (really) [CLS] #1 @home $5.00 50% a_b",
    "tabs\tand\nnewlines\r\nand\u00a0no-break\u2003em\u3000ideographic spaces",
    "control\u0000chars\u0007and\ufffdreplacement\u200bzero-width",
    "中文字符 and 日本語 mixed",
    "«quotes» — dashes – and … ellipsis “curly” ‘single’ ¿qué? ¡sí!",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x" * 101,
    "emoji 😀 and symbols ™ © ° ± ×",
    "ÅNGSTRÖM Ǆ İstanbul ß ﬁ ℌ",
    "",
]


def log(msg):
    """Writes a timestamped progress line to stderr."""
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def parse_schedule(text):
    """Parses "128:2,256:1" into [(128, 2), (256, 1)]."""
    stages = []
    for part in text.split(","):
        length, epochs = part.split(":")
        stages.append((int(length), int(epochs)))
    return stages


def read_split(data_dir, task, split):
    """Reads one JSON Lines split as a list of (text, label)."""
    path = os.path.join(data_dir, task, split + ".jsonl")
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                out.append((d["text"], int(d["label"])))
    return out


def read_corpus(data_dir, name):
    """Reads the passages of an unlabelled corpus that the data command prepared."""
    path = os.path.join(data_dir, "unlabelled", name + ".jsonl")
    if not os.path.exists(path):
        raise SystemExit("corpus %s is not prepared (run: go run ./cmd/cipherprune data --unlabelled)" % name)
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def read_extra(data_dir, names, limit, seed):
    """The masked LM's extra texts: other tasks' training texts (labels unused)
    and unlabelled corpora, in the order named; with limit, a seeded random
    subset of at most limit of them, in the same order."""
    texts = []
    for name in names:
        if name in LABELS:
            part = [t for t, _ in read_split(data_dir, name, "train")]
            log("masked-LM extra texts: %d %s training texts (labels unused)" % (len(part), name))
        else:
            part = read_corpus(data_dir, name)
            log("masked-LM extra texts: %d %s passages" % (len(part), name))
        texts += part
    if limit is not None and len(texts) > limit:
        keep = sorted(random.Random(seed).sample(range(len(texts)), limit))
        texts = [texts[i] for i in keep]
        log("masked-LM extra texts: a random %d of them" % limit)
    return texts


def model_digest(model_dir):
    """SHA-256 over a model directory's config, weights and vocabulary."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        path = os.path.join(model_dir, name)
        if not os.path.exists(path):
            raise SystemExit("%s is missing" % path)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def read_init(model_dir, preset):
    """Reads a trained model's float32 weights and its vocabulary, checking
    that its shape is the preset's."""
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        c = json.load(f)
    want = {"hidden_size": preset["hidden"], "num_hidden_layers": preset["layers"],
            "num_attention_heads": preset["heads"], "intermediate_size": preset["ffn"],
            "max_position_embeddings": preset["positions"]}
    for k, v in want.items():
        if c.get(k) != v:
            raise SystemExit("--init-from: %s has %s %r, the preset %r" % (model_dir, k, c.get(k), v))
    tokens = wordpiece.load_vocab(os.path.join(model_dir, "vocab.txt"))
    if c.get("vocab_size") != len(tokens):
        raise SystemExit("--init-from: %s has vocab_size %r but %d tokens in vocab.txt"
                         % (model_dir, c.get("vocab_size"), len(tokens)))
    tensors, _ = safetensors_io.load_file(os.path.join(model_dir, "model.safetensors"))
    return {k: v.to(torch.float32) for k, v in tensors.items()}, tokens


def batches_for_epoch(lengths, batch_size, rng):
    """Shuffles indices into batches of similar length (buckets of 50 batches)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: lengths[i])
        batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(seqs, pad_id):
    """Pads lists of ids to the longest; returns (ids, mask) long tensors."""
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids, mask


def mask_tokens(ids, attn, tok, vocab_size, gen):
    """BERT masking of a batch; returns (inputs, labels with -100 where not predicted)."""
    special = (ids == tok.cls_id) | (ids == tok.sep_id) | (attn == 0)
    chosen = (torch.rand(ids.shape, generator=gen) < 0.15) & ~special
    # Predict at least one token per sequence that has any.
    none = ~chosen.any(dim=1) & (~special).any(dim=1)
    for r in torch.nonzero(none).flatten().tolist():
        cand = torch.nonzero(~special[r]).flatten()
        chosen[r, cand[torch.randint(len(cand), (1,), generator=gen)]] = True
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    u = torch.rand(ids.shape, generator=gen)
    inputs = ids.clone()
    inputs[chosen & (u < 0.8)] = tok.mask_id
    rand_pos = chosen & (u >= 0.8) & (u < 0.9)
    random_ids = torch.randint(len(wordpiece.SPECIAL_TOKENS), vocab_size, ids.shape, generator=gen)
    inputs[rand_pos] = random_ids[rand_pos]
    return inputs, labels


def augment_mask(ids, attn, tok, p, gen):
    """Replaces each real non-special token by [MASK] with probability p (fine-tuning noise)."""
    special = (ids == tok.cls_id) | (ids == tok.sep_id) | (attn == 0)
    hit = (torch.rand(ids.shape, generator=gen) < p) & ~special
    return torch.where(hit, torch.full_like(ids, tok.mask_id), ids)


class TokenTeacher:
    """A logistic regression on binary WordPiece-id features, used as a distillation teacher.

    Fitted on the training split (L2 strength chosen on validation); special
    tokens and [MASK] carry no feature, so it scores masked inputs naturally.
    """

    def __init__(self, bodies, labels, vocab_size, log_fn=None):
        mats = {k: self._matrix(v, vocab_size) for k, v in bodies.items()}
        ys = {k: torch.tensor(v) for k, v in labels.items()}
        best = None
        for l2 in baseline.L2_STRENGTHS:
            w, b = baseline.fit_logistic(mats["train"], ys["train"], l2)
            acc = baseline.accuracy(mats["validation"], ys["validation"], w, b)
            if best is None or acc > best[0]:
                best = (acc, l2, w, b)
        self.validation_accuracy, self.l2, self.w, self.b = best
        self.test_accuracy = baseline.accuracy(mats["test"], ys["test"], self.w, self.b)
        self.first_real = len(wordpiece.SPECIAL_TOKENS)
        if log_fn:
            log_fn("token teacher: l2 %g, validation accuracy %.4f, test accuracy %.4f"
                   % (self.l2, self.validation_accuracy, self.test_accuracy))

    @staticmethod
    def _matrix(seqs, vocab_size):
        rows, cols = [], []
        for r, s in enumerate(seqs):
            for c in sorted(set(s)):
                rows.append(r)
                cols.append(c)
        idx = torch.tensor([rows, cols], dtype=torch.long)
        return torch.sparse_coo_tensor(idx, torch.ones(len(rows), dtype=torch.float64),
                                       (len(seqs), vocab_size)).coalesce()

    def probs(self, ids, attn):
        """Class probabilities [B, 2] (float32) for a padded batch."""
        x = torch.zeros(ids.shape[0], self.w.shape[0], dtype=torch.float64)
        real = (attn == 1) & (ids >= self.first_real)
        x.scatter_(1, torch.where(real, ids, torch.zeros_like(ids)), real.to(torch.float64))
        x[:, 0] = 0.0
        z = (x @ self.w + self.b).to(torch.float32)
        p1 = torch.sigmoid(z)
        return torch.stack([1 - p1, p1], dim=-1)


def make_optimizer(params_named, lr, weight_decay):
    """AdamW with no weight decay on biases, LayerNorm weights and the MLM bias."""
    decay, no_decay = [], []
    for name, p in params_named:
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.999), eps=1e-6)


def lr_factor(step, total, warmup_frac):
    """Linear warm-up to 1 over warmup_frac of the steps, then linear decay to 0."""
    warm = max(1, int(total * warmup_frac))
    if step < warm:
        return (step + 1) / warm
    return max(0.0, (total - step) / max(1, total - warm))


@torch.no_grad()
def evaluate(model, seqs, labels, tok, max_len, batch_size=32, dtype=torch.float32, head=None):
    """Returns (accuracy, mean loss) of model on seqs cut to max_len (head: see cut)."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    correct, loss = 0, 0.0
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        ids, attn = collate([cut(seqs[i], max_len, tok, head) for i in idx], tok.pad_id)
        logits = model(ids, attn).to(dtype)
        y = torch.tensor([labels[i] for i in idx])
        correct += int((logits.argmax(-1) == y).sum())
        loss += float(F.cross_entropy(logits.double(), y, reduction="sum"))
    model.train(was_training)
    return correct / len(seqs), loss / len(seqs)


def cut(body, max_len, tok, head=None):
    """[CLS] + max_len-2 body ids + [SEP]: the first ones, or with head the
    first head and the last max_len-2-head (wordpiece.truncate)."""
    return [tok.cls_id] + wordpiece.truncate(body, max_len - 2, head) + [tok.sep_id]


def stage_head(head, max_len, positions):
    """The head count at a shorter training length: head scaled by
    (max_len-2)/(positions-2), so every stage keeps the same share of
    beginning and end (None stays None)."""
    if head is None:
        return None
    return head * (max_len - 2) // (positions - 2)


def keep_ends(ids, limit):
    """ids cut to at most limit, the first and last limit/2 of a longer text,
    so that a head-and-tail cut of the result sees the text's true end."""
    if len(ids) <= limit:
        return ids
    return ids[:limit // 2] + ids[len(ids) - (limit - limit // 2):]




class Trainer:
    """Holds the model, the data and the resumable training state."""

    def __init__(self, args, cfg, tok, data):
        self.args, self.cfg, self.tok = args, cfg, tok
        self.bodies = data["bodies"]
        self.labels = data["labels"]
        self.model = bert.BertForSequenceClassification(cfg)
        self.mlm = bert.BertMLMHead(cfg, self.model.bert.embeddings.word_embeddings)
        self.gen = torch.Generator().manual_seed(args.seed + 1)
        self.state = {"phase": "mlm", "stage": 0, "epoch": 0, "batch": 0, "step": 0,
                      "train_seconds": 0.0, "best": None, "history": [], "bad_epochs": 0,
                      "trial": 0, "trial_best": None}
        self.best_weights = None
        self.pretrained = None  # the weights every fine-tuning trial starts from
        self.trial_weights = []  # each finished trial's best weights and validation key (--soup)
        self.trial_current = None  # the running trial's best so far (--soup)
        self.teacher = None
        if args.distill > 0:
            labelled = {k: self.bodies[k] for k in ("train", "validation", "test")}
            self.teacher = TokenTeacher(labelled, self.labels, cfg.vocab_size, log)
        self.attn_modules = [layer.attention.self for layer in self.model.bert.encoder.layer]
        if args.attn_weight > 0:
            lo, hi = args.attn_lse
            c = args.attn_shift
            for m in self.attn_modules:
                m.range_window = (lo + c, hi + c, args.attn_floor + c)
        self.opt = None
        self._new_optimizer("mlm")
        self.ckpt_path = os.path.join(args.checkpoint_dir, "checkpoint.pt")
        self.last_save = time.time()

    # -- optimizer and schedule -------------------------------------------------

    def _new_optimizer(self, phase):
        a = self.args
        if phase == "mlm":
            named = list(self.model.bert.named_parameters())
            named += [("mlm." + n, p) for n, p in self.mlm.named_parameters()
                      if not n.startswith("word_embeddings")]
            self.opt = make_optimizer(named, a.mlm_lr, a.weight_decay)
        else:
            self.opt = make_optimizer(list(self.model.named_parameters()), a.lr, a.weight_decay)

    def _schedule(self, phase):
        return self.args.mlm_stages if phase == "mlm" else self.args.ft_stages

    def _corpus(self, phase):
        """The training texts of a phase: MLM also reads the unlabelled extra texts."""
        if phase == "mlm":
            return self.bodies["train"] + self.bodies.get("mlm_extra", [])
        return self.bodies["train"]

    def _total_steps(self, phase):
        n = len(self._corpus(phase))
        total = sum(e * math.ceil(n / self.args.batch) for _, e in self._schedule(phase))
        if self.args.max_steps:
            total = min(total, self.args.max_steps)
        return total

    # -- checkpoints --------------------------------------------------------------

    def save(self):
        os.makedirs(self.args.checkpoint_dir, exist_ok=True)
        blob = {
            "fingerprint": self.args.fingerprint,
            "model": self.model.state_dict(),
            "mlm": {k: v for k, v in self.mlm.state_dict().items() if not k.startswith("word_embeddings")},
            "opt": self.opt.state_dict(),
            "state": self.state,
            "best_weights": self.best_weights,
            "pretrained": self.pretrained,
            "trial_weights": self.trial_weights,
            "trial_current": self.trial_current,
            "torch_rng": torch.get_rng_state(),
            "gen": self.gen.get_state(),
        }
        tmp = self.ckpt_path + ".tmp"
        torch.save(blob, tmp)
        os.replace(tmp, self.ckpt_path)
        self.last_save = time.time()

    def try_resume(self):
        if not os.path.exists(self.ckpt_path):
            return False
        blob = torch.load(self.ckpt_path)
        if blob["fingerprint"] != self.args.fingerprint:
            raise SystemExit("checkpoint %s was made with other settings; rerun with --fresh"
                             % self.ckpt_path)
        self.model.load_state_dict(blob["model"])
        self.mlm.load_state_dict(blob["mlm"], strict=False)
        self.state = blob["state"]
        self.state.setdefault("trial", 0)  # checkpoints from before --ft-seeds
        self.state.setdefault("trial_best", None)
        self._new_optimizer(self.state["phase"])
        self.opt.load_state_dict(blob["opt"])
        self.best_weights = blob["best_weights"]
        self.pretrained = blob.get("pretrained")
        self.trial_weights = blob.get("trial_weights", [])
        self.trial_current = blob.get("trial_current")
        torch.set_rng_state(blob["torch_rng"])
        self.gen.set_state(blob["gen"])
        s = self.state
        log("resumed from %s: phase %s stage %d epoch %d batch %d (step %d, %.0f s trained)"
            % (self.ckpt_path, s["phase"], s["stage"], s["epoch"], s["batch"], s["step"], s["train_seconds"]))
        return True

    # -- training -------------------------------------------------------------------

    def run(self):
        s = self.state
        if s["phase"] == "mlm":
            if self._total_steps("mlm") > 0:
                self._run_phase("mlm")
            s.update(phase="ft", stage=0, epoch=0, batch=0, step=0, trial=0)
            self.pretrained = {k: v.clone() for k, v in self.model.state_dict().items()}
            self._new_optimizer("ft")
            self.save()
        if s["phase"] == "ft":
            while True:
                self._run_phase("ft")  # returns at once if a resumed trial had finished
                if self.args.soup and len(self.trial_weights) == s["trial"]:
                    self.trial_weights.append(self.trial_current)
                    self.trial_current = None
                if s["trial"] + 1 >= self.args.ft_seeds:
                    break
                self._next_trial()
            if self.args.soup:
                self._greedy_soup()
            s["phase"] = "done"
            self.save()

    def _greedy_soup(self):
        """Averages the trials' weights greedily (Wortsman et al., 2022, "Model soups").

        Trials are taken best first by validation (accuracy, then loss); one
        joins the soup only if the uniform average with it scores better on
        validation than the soup without it. The soup starts as the best trial,
        so it never scores below it on validation; it becomes the saved model.
        """
        s = self.state
        order = sorted(range(len(self.trial_weights)), key=lambda i: tuple(self.trial_weights[i]["key"]),
                       reverse=True)
        members = [order[0]]
        best_key = tuple(self.trial_weights[order[0]]["key"])
        log("soup: trial %d alone: validation accuracy %.4f loss %.4f" % (order[0] + 1, best_key[0], -best_key[1]))
        for i in order[1:]:
            avg = self._average(members + [i])
            self.model.load_state_dict(avg)
            acc, vloss = evaluate(self.model, self.bodies["validation"], self.labels["validation"],
                                  self.tok, self.cfg.max_position_embeddings, head=self.args.head_tokens)
            took = (acc, -vloss) > best_key
            log("soup: adding trial %d (alone %.4f): validation accuracy %.4f loss %.4f: %s"
                % (i + 1, self.trial_weights[i]["key"][0], acc, vloss, "kept" if took else "left out"))
            if took:
                members.append(i)
                best_key = (acc, -vloss)
        self.best_weights = self._average(members)
        s["soup"] = {"members": [i for i in members], "validation_accuracy": best_key[0],
                     "validation_loss": -best_key[1],
                     "trials": [{"trial": i, "validation_accuracy": t["key"][0], "validation_loss": -t["key"][1]}
                                for i, t in enumerate(self.trial_weights)]}
        s["best"] = dict(s["best"], phase="soup", validation_accuracy=best_key[0], validation_loss=-best_key[1],
                         soup_members=len(members))

    def _average(self, members):
        """The uniform average of the listed trials' weights."""
        first = self.trial_weights[members[0]]["weights"]
        out = {}
        for k, v in first.items():
            if v.is_floating_point():
                out[k] = sum(self.trial_weights[i]["weights"][k] for i in members) / len(members)
            else:
                out[k] = v.clone()
        return out

    def _next_trial(self):
        """Restarts fine-tuning from the pre-trained weights with a new seed.

        The pooler and classifier are drawn afresh (they carry no MLM
        training), as are the batch order and the dropout and [MASK] noise;
        the best model over all trials, by validation, is the one kept.
        """
        s = self.state
        s.update(trial=s["trial"] + 1, stage=0, epoch=0, batch=0, step=0, bad_epochs=0, trial_best=None)
        log("fine-tuning trial %d of %d" % (s["trial"] + 1, self.args.ft_seeds))
        self.model.load_state_dict(self.pretrained)
        torch.manual_seed(self.args.seed * 1000 + s["trial"])
        self.gen.manual_seed(self.args.seed * 1000 + s["trial"] + 1)
        if not self.args.soup:
            # With --soup every trial starts from the same head, so that the
            # trials' weights stay in one basin and can be averaged.
            std = self.cfg.initializer_range
            bert.init_weights(self.model.bert.pooler.dense, std)
            bert.init_weights(self.model.classifier, std)
        self._new_optimizer("ft")
        self.save()

    def _run_phase(self, phase):
        a, s = self.args, self.state
        stages = self._schedule(phase)
        total = self._total_steps(phase)
        base_lr = a.mlm_lr if phase == "mlm" else a.lr
        self.model.train()
        self.mlm.train()
        train = self._corpus(phase)
        while s["stage"] < len(stages) and s["step"] < total:
            max_len, epochs = stages[s["stage"]]
            while s["epoch"] < epochs and s["step"] < total:
                tag = "%d-%s-%d-%d" % (a.seed, phase, s["stage"], s["epoch"])
                if phase == "ft" and s["trial"] > 0:
                    tag += "-trial%d" % s["trial"]
                rng = random.Random(tag)
                lengths = [min(len(b) + 2, max_len) for b in train]
                batches = batches_for_epoch(lengths, a.batch, rng)
                # Windows for MLM, drawn from their own seeded generator so a resume
                # in mid-epoch sees the same ones.
                wrng = random.Random("%d-%s-%d-%d-win" % (a.seed, phase, s["stage"], s["epoch"]))
                starts = [wrng.random() for _ in train]
                t_epoch, loss_sum, loss_n, pen_sum = time.time(), 0.0, 0, 0.0
                while s["batch"] < len(batches) and s["step"] < total:
                    t0 = time.time()
                    idx = batches[s["batch"]]
                    for group in self.opt.param_groups:
                        group["lr"] = base_lr * lr_factor(s["step"], total, a.warmup)
                    if phase == "mlm":
                        seqs = [self._window(train[i], max_len, starts[i]) for i in idx]
                        ids, attn = collate(seqs, self.tok.pad_id)
                        inputs, labels = mask_tokens(ids, attn, self.tok, self.cfg.vocab_size, self.gen)
                        h, _, _ = self.model.bert(inputs, attn)
                        sel = labels != -100
                        loss = F.cross_entropy(self.mlm(h[sel]), labels[sel])
                    else:
                        head = stage_head(a.head_tokens, max_len, self.cfg.max_position_embeddings)
                        seqs = [cut(train[i], max_len, self.tok, head) for i in idx]
                        ids, attn = collate(seqs, self.tok.pad_id)
                        y = torch.tensor([self.labels["train"][i] for i in idx])
                        if a.aug_mask > 0:
                            ids = augment_mask(ids, attn, self.tok, a.aug_mask, self.gen)
                        logits = self.model(ids, attn)
                        loss = F.cross_entropy(logits, y, label_smoothing=a.label_smoothing)
                        if self.teacher is not None:
                            soft = self.teacher.probs(ids, attn)
                            kd = -(soft * F.log_softmax(logits, dim=-1)).sum(-1).mean()
                            loss = (1 - a.distill) * loss + a.distill * kd
                    if a.attn_weight > 0:
                        penalty = sum(m.range_penalty for m in self.attn_modules)
                        pen_sum += float(penalty)
                        loss = loss + a.attn_weight * penalty
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(
                        [p for g in self.opt.param_groups for p in g["params"]], 1.0)
                    self.opt.step()
                    loss_sum += float(loss)
                    loss_n += 1
                    s["batch"] += 1
                    s["step"] += 1
                    s["train_seconds"] += time.time() - t0
                    if s["step"] % a.log_every == 0:
                        log("%s stage %d (len %d) epoch %d batch %d/%d step %d/%d loss %.4f attn-penalty %.4f lr %.2e"
                            % (phase, s["stage"], max_len, s["epoch"], s["batch"], len(batches),
                               s["step"], total, loss_sum / loss_n, pen_sum / loss_n,
                               self.opt.param_groups[0]["lr"]))
                    if time.time() - self.last_save > a.checkpoint_seconds:
                        self.save()
                record = {"phase": phase, "stage": s["stage"], "max_len": max_len, "epoch": s["epoch"],
                          "step": s["step"], "train_loss": loss_sum / max(1, loss_n),
                          "attn_penalty": pen_sum / max(1, loss_n),
                          "epoch_seconds": round(time.time() - t_epoch, 1)}
                s["epoch"] += 1
                s["batch"] = 0
                stop = False
                if phase == "ft":
                    t0 = time.time()
                    acc, vloss = evaluate(self.model, self.bodies["validation"], self.labels["validation"],
                                          self.tok, self.cfg.max_position_embeddings, head=a.head_tokens)
                    s["train_seconds"] += time.time() - t0
                    record.update(validation_accuracy=acc, validation_loss=vloss, trial=s["trial"])
                    key = (acc, -vloss)
                    best = s["best"]
                    if best is None or key > (best["validation_accuracy"], -best["validation_loss"]):
                        s["best"] = dict(record)
                        self.best_weights = {k: v.clone() for k, v in self.model.state_dict().items()}
                    tb = s["trial_best"]
                    if tb is None or key > tuple(tb):
                        s["trial_best"] = list(key)
                        if a.soup:
                            self.trial_current = {"key": list(key), "weights": {
                                k: v.clone() for k, v in self.model.state_dict().items()}}
                        s["bad_epochs"] = 0
                    else:
                        s["bad_epochs"] += 1
                    stop = a.patience > 0 and s["bad_epochs"] >= a.patience
                s["history"].append(record)
                log("end of %s epoch: %s" % (phase, json.dumps(record)))
                self.save()
                if stop:
                    log("no validation improvement for %d epochs: stopping" % a.patience)
                    s["step"] = total
            if s["epoch"] >= epochs:
                s["stage"] += 1
                s["epoch"] = 0

    def _window(self, body, max_len, u):
        span = max_len - 2
        start = 0 if len(body) <= span else int(u * (len(body) - span + 1))
        return [self.tok.cls_id] + body[start:start + span] + [self.tok.sep_id]


def rounded_model(cfg, weights):
    """Returns (fp16 tensors, float64 eval-mode model holding exactly those values)."""
    half = {k: v.detach().to(torch.float16).contiguous() for k, v in weights.items()}
    model = bert.BertForSequenceClassification(cfg).double()
    model.load_state_dict({k: v.to(torch.float64) for k, v in half.items()})
    model.eval()
    return half, model


def tokenizer_golden(tok, max_len, texts, head=None):
    """Returns the tokenizer golden file: TOKENIZER_CASES and texts, tokenized
    (and truncated with head, written as head_tokens, when it is set)."""
    out = {"vocab": "vocab.txt", "max_len": max_len}
    if head is not None:
        out["head_tokens"] = head
    out["cases"] = [{"text": t, "tokens": tok.tokenize(t), "input_ids": tok.encode(t, max_len, head)}
                    for t in TOKENIZER_CASES + list(texts)]
    return out


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", required=True, choices=sorted(LABELS))
    p.add_argument("--preset", required=True, choices=sorted(PRESETS))
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--data-dir", default=os.environ.get("CIPHERPRUNE_DATA")
                   or os.path.join(os.path.expanduser("~"), ".cache", "cipherprune"))
    p.add_argument("--checkpoint-dir", default=None,
                   help="where to keep the resumable state (default ~/.cache/cipherprune-train/<out name>)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vocab-size", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--max-len", type=int, help="fine-tune at this length only (shorthand for --ft-schedule)")
    p.add_argument("--epochs", type=int, help="fine-tuning epochs (all at --max-len or the preset's last length)")
    p.add_argument("--mlm-epochs", type=int, help="MLM epochs (at the preset's first MLM length)")
    p.add_argument("--ft-schedule", help='fine-tuning length schedule, e.g. "256:2,512:1"')
    p.add_argument("--mlm-schedule", help='MLM length schedule, e.g. "128:2"')
    p.add_argument("--lr", type=float)
    p.add_argument("--mlm-lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--warmup", type=float, help="warm-up fraction of each phase's steps")
    p.add_argument("--patience", type=int, help="stop fine-tuning after this many epochs without "
                                                   "validation improvement (0: never)")
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--aug-mask", type=float, help="fine-tuning noise: probability of replacing a token by [MASK]")
    p.add_argument("--distill", type=float, help="weight of the distillation loss from a WordPiece "
                                                 "logistic-regression teacher (0: off)")
    p.add_argument("--dropout", type=float, help="hidden and attention dropout")
    p.add_argument("--attn-weight", type=float, help="weight of the HE-friendly attention-range penalty "
                                                     "(bert.attention_range_penalty; 0: off)")
    p.add_argument("--attn-shift", type=float,
                   help="the softmax shift c the encrypted path subtracts from every attention logit")
    p.add_argument("--attn-lse",
                   help="window lo:hi for each row's log-sum-exp of its logits minus the shift")
    p.add_argument("--attn-floor", type=float, default=-28.0,
                   help="lowest allowed attention logit minus the shift")
    p.add_argument("--mlm-extra",
                   help="also pre-train (masked LM only) on these texts, unlabelled: a comma-separated list of "
                        "other tasks (their training split) and corpora (%s; prepared by "
                        "'go run ./cmd/cipherprune data --unlabelled')" % ", ".join(CORPORA))
    p.add_argument("--init-from",
                   help="start from this trained model directory's weights and vocabulary (its shape must be "
                        "the preset's) instead of a fresh initialization and a new vocabulary")
    p.add_argument("--mlm-extra-max", type=int,
                   help="use a seeded random subset of at most this many of the --mlm-extra texts")
    p.add_argument("--ft-seeds", type=int, help="fine-tuning trials from the same pre-trained weights, "
                                                 "each with its own seed; the best on validation is kept")
    p.add_argument("--soup", action="store_true", help="with --ft-seeds: every trial starts from the same "
                   "head and the saved model is a greedy soup (validation-selected average) of the trials' best weights")
    p.add_argument("--max-steps", type=int, default=0, help="cap on the optimizer steps of each phase")
    p.add_argument("--checkpoint-seconds", type=float, default=300)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--head-tokens", type=int,
                   help="cut a long input to its first H and last positions-2-H tokens (written to "
                        "config.json as truncation_head_tokens; default: the first positions-2)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    preset = PRESETS[args.preset]
    for key in ("vocab_size", "batch", "lr", "mlm_lr", "weight_decay", "warmup", "patience",
                "label_smoothing", "aug_mask", "distill", "dropout", "attn_weight", "attn_shift", "attn_lse",
                "ft_seeds"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    ft_stages = parse_schedule(args.ft_schedule or preset["ft_schedule"])
    mlm_stages = parse_schedule(args.mlm_schedule or preset["mlm_schedule"])
    if args.max_len is not None:
        ft_stages = [(args.max_len, sum(e for _, e in ft_stages))]
    if args.epochs is not None:
        ft_stages = [(ft_stages[-1][0], args.epochs)]
    if args.mlm_epochs is not None:
        mlm_stages = [(mlm_stages[0][0], args.mlm_epochs)]
    for length, _ in ft_stages + mlm_stages:
        if not 3 <= length <= preset["positions"]:
            raise SystemExit("length %d is outside 3..%d" % (length, preset["positions"]))
    args.ft_stages, args.mlm_stages = ft_stages, mlm_stages
    args.attn_lse = tuple(float(v) for v in args.attn_lse.split(":"))
    if len(args.attn_lse) != 2 or args.attn_lse[0] >= args.attn_lse[1]:
        raise SystemExit("--attn-lse must be lo:hi with lo < hi")
    if args.checkpoint_dir is None:
        args.checkpoint_dir = os.path.join(os.path.expanduser("~"), ".cache", "cipherprune-train",
                                           os.path.basename(os.path.abspath(args.out)))
    if args.ft_seeds < 1:
        raise SystemExit("--ft-seeds must be at least 1")
    settings = {k: v for k, v in sorted(vars(args).items())
                if k not in ("out", "checkpoint_dir", "fresh", "checkpoint_seconds", "log_every", "threads")}
    # Options at their old behaviour stay out of the fingerprint, so that
    # checkpoints made before they existed still resume.
    if args.ft_seeds == 1:
        del settings["ft_seeds"]
    if args.mlm_extra is None:
        del settings["mlm_extra"]
    else:
        for name in args.mlm_extra.split(","):
            if name == args.task:
                raise SystemExit("--mlm-extra must name another task")
            if name not in LABELS and name not in CORPORA:
                raise SystemExit("--mlm-extra: unknown source %r (want tasks %s or corpora %s)"
                                 % (name, ", ".join(sorted(LABELS)), ", ".join(CORPORA)))
    if args.mlm_extra_max is None:
        del settings["mlm_extra_max"]
    elif args.mlm_extra is None or args.mlm_extra_max < 1:
        raise SystemExit("--mlm-extra-max needs --mlm-extra and a positive count")
    if args.init_from is None:
        del settings["init_from"]
    else:
        # The weights, not the path, identify the starting point.
        settings["init_from"] = model_digest(args.init_from)
    if args.head_tokens is None:
        del settings["head_tokens"]
    elif not 1 <= args.head_tokens <= preset["positions"] - 2:
        raise SystemExit("--head-tokens must be in 1..%d" % (preset["positions"] - 2))
    if not args.soup:
        del settings["soup"]
    elif args.ft_seeds < 2:
        raise SystemExit("--soup needs --ft-seeds 2 or more")
    args.fingerprint = json.dumps(settings, sort_keys=True, default=str)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    t_start = time.time()
    command = "/usr/bin/python3 -m models.training.train " + " ".join(shlex.quote(a) for a in argv)
    log("command: " + command)
    log("settings: " + args.fingerprint)

    splits = {name: read_split(args.data_dir, args.task, name) for name in ("train", "validation", "test")}
    log("splits: " + ", ".join("%s %d" % (k, len(v)) for k, v in splits.items()))

    init = None
    if args.init_from:
        init, tokens = read_init(args.init_from, preset)
        log("starting from %s (%d tensors)" % (args.init_from, len(init)))
    else:
        tokens = wordpiece.build_vocab([t for t, _ in splits["train"]], args.vocab_size)
    tok = wordpiece.Tokenizer(tokens)
    log("vocabulary: %d tokens" % len(tok))
    if args.head_tokens is None:
        bodies = {k: [[tok.vocab[w] for w in tok.tokenize(t)][:MAX_TEXT_TOKENS] for t, _ in v]
                  for k, v in splits.items()}
    else:
        bodies = {k: [keep_ends([tok.vocab[w] for w in tok.tokenize(t)], MAX_TEXT_TOKENS) for t, _ in v]
                  for k, v in splits.items()}
    labels = {k: [l for _, l in v] for k, v in splits.items()}
    if args.mlm_extra:
        extra = read_extra(args.data_dir, args.mlm_extra.split(","), args.mlm_extra_max, args.seed)
        bodies["mlm_extra"] = [[tok.vocab[w] for w in tok.tokenize(t)][:MAX_TEXT_TOKENS] for t in extra]

    cfg = bert.BertConfig(
        vocab_size=len(tok), hidden_size=preset["hidden"], num_hidden_layers=preset["layers"],
        num_attention_heads=preset["heads"], intermediate_size=preset["ffn"],
        max_position_embeddings=preset["positions"], pad_token_id=tok.pad_id, num_labels=2,
        hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout)

    # The baseline depends on the splits only; a resumed run reads it back.
    base_path = os.path.join(args.checkpoint_dir, "baseline.json")
    if not args.fresh and os.path.exists(base_path):
        with open(base_path, encoding="utf-8") as f:
            base = json.load(f)
        log("bag-of-words baseline (from %s): %s" % (base_path, json.dumps(base)))
    else:
        t0 = time.time()
        base = baseline.run(splits["train"], splits["validation"], splits["test"])
        log("bag-of-words baseline (%.0f s): %s" % (time.time() - t0, json.dumps(base)))
        os.makedirs(args.checkpoint_dir, exist_ok=True)
        write_json(base_path, base)

    trainer = Trainer(args, cfg, tok, {"bodies": bodies, "labels": labels})
    if init is not None:
        trainer.model.load_state_dict(init)  # a resumed checkpoint below replaces them
    if args.fresh or not trainer.try_resume():
        log("starting fresh; checkpoints in %s" % args.checkpoint_dir)
    trainer.run()
    state = trainer.state
    log("training done: %.0f s of training; best %s" % (state["train_seconds"], json.dumps(state["best"])))

    # Round to fp16 and score exactly what is saved.
    half, model = rounded_model(cfg, trainer.best_weights)
    n = cfg.max_position_embeddings
    head = args.head_tokens
    val_acc, val_loss = evaluate(model, bodies["validation"], labels["validation"], tok, n, dtype=torch.float64,
                                 head=head)
    test_acc, test_loss = evaluate(model, bodies["test"], labels["test"], tok, n, dtype=torch.float64, head=head)
    log("rounded model: validation accuracy %.4f, test accuracy %.4f (baseline %.4f)"
        % (val_acc, test_acc, base["test_accuracy"]))

    os.makedirs(args.out, exist_ok=True)
    names = list(half)
    expected = bert.hf_parameter_names(cfg.num_hidden_layers)
    if sorted(names) != sorted(expected):
        raise RuntimeError("state_dict names differ from the Hugging Face names")
    hf = cfg.to_hf_dict(LABELS[args.task])
    if head is not None:
        hf["truncation_head_tokens"] = head
    write_json(os.path.join(args.out, "config.json"), hf)
    safetensors_io.save_file(half, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    wordpiece.save_vocab(tok.tokens, os.path.join(args.out, "vocab.txt"))

    golden = {"model": os.path.basename(os.path.abspath(args.out)), "task": args.task, "n": n,
              "dtype": "float64", "examples": []}
    with torch.no_grad():
        for text, label in splits["test"][:GOLDEN_COUNT]:
            ids, mask, types = tok.pad(tok.encode(text, n, head), n)
            logits = model(torch.tensor([ids]), torch.tensor([mask]), torch.tensor([types]))[0]
            golden["examples"].append({"text": text, "label": label, "input_ids": ids,
                                       "attention_mask": mask, "logits": logits.tolist()})
    write_json(os.path.join(args.out, "golden.json"), golden)
    write_json(os.path.join(args.out, "tokenizer_golden.json"),
               tokenizer_golden(tok, n, [t for t, _ in splits["test"][:4]], head))

    metrics = {
        "model": golden["model"], "task": args.task, "preset": args.preset, "seed": args.seed,
        "command": command,
        "splits": {k: len(v) for k, v in splits.items()},
        "test_accuracy": test_acc, "validation_accuracy": val_acc,
        "test_loss": test_loss, "validation_loss": val_loss,
        "accuracy_note": "float64 forward with the float16-rounded weights of model.safetensors, "
                         "inputs truncated to %d tokens" % n
                         + ("" if head is None else " (first %d and last %d body tokens)" % (head, n - 2 - head)),
        "baseline": dict(base, name="bag-of-words logistic regression"),
        "beats_baseline": test_acc > base["test_accuracy"],
        "training_seconds": round(state["train_seconds"], 1),
        "wall_seconds_this_run": round(time.time() - t_start, 1),
        "best_epoch": state["best"],
        "soup": state.get("soup"),
        "history": state["history"],
        "settings": json.loads(args.fingerprint),
        "config": hf,
        "torch_version": torch.__version__,
        "parameters": sum(v.numel() for v in half.values()),
    }
    write_json(os.path.join(args.out, "metrics.json"), metrics)
    log("wrote %s" % args.out)
    if os.path.exists(base_path):
        os.remove(base_path)
    if os.path.exists(trainer.ckpt_path):
        os.remove(trainer.ckpt_path)
        try:
            os.rmdir(args.checkpoint_dir)
        except OSError:
            pass
    return metrics


if __name__ == "__main__":
    main()
