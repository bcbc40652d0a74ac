"""Fast smoke tests of the training code.

Run from the repository root::

    /usr/bin/python3 -m unittest discover -s models/training -t .
"""

import contextlib
import io
import json
import os
import random
import struct
import tempfile
import unittest

import torch
from torch.nn import functional as F

from models.training import baseline, bert, safetensors_io, train, wordpiece

VOCAB = list(wordpiece.SPECIAL_TOKENS) + [
    "the", "un", "##want", "##ed", "runn", "##ing", ",", ".", "!", "'", "s", "cafe", "hello",
    "world", "a", "b", "##b", "x", "##x", "don", "t", "中", "文",
]


class TokenizerTest(unittest.TestCase):
    def setUp(self):
        self.tok = wordpiece.Tokenizer(VOCAB)

    def test_special_ids(self):
        self.assertEqual((self.tok.pad_id, self.tok.unk_id, self.tok.cls_id, self.tok.sep_id, self.tok.mask_id),
                         (0, 1, 2, 3, 4))

    def test_basic_punctuation_and_case(self):
        self.assertEqual(wordpiece.basic_tokenize("Hello, World!! don't"),
                         ["hello", ",", "world", "!", "!", "don", "'", "t"])
        # BERT punctuation includes ASCII symbols such as $ + < = > ^ ` | ~ and Unicode P*.
        self.assertEqual(wordpiece.basic_tokenize("a$b+c^d~e«f»g—h"),
                         ["a", "$", "b", "+", "c", "^", "d", "~", "e", "«", "f", "»", "g", "—", "h"])
        # Symbols outside those sets (So, Sm beyond ASCII) stay inside words.
        self.assertEqual(wordpiece.basic_tokenize("5°c ±1"), ["5°c", "±1"])

    def test_accents_whitespace_control_cjk(self):
        self.assertEqual(wordpiece.basic_tokenize("Café  NAÏVE\tcrème"), ["cafe", "naive", "creme"])
        self.assertEqual(wordpiece.basic_tokenize("a\u00a0b\u3000c\nd\r\ne"), ["a", "b", "c", "d", "e"])
        self.assertEqual(wordpiece.basic_tokenize("x\u0000y\ufffdz\u200bw\u0007v"), ["xyzwv"])
        self.assertEqual(wordpiece.basic_tokenize("ab中文cd"), ["ab", "中", "文", "cd"])

    def test_wordpiece(self):
        self.assertEqual(self.tok.tokenize("unwanted running"), ["un", "##want", "##ed", "runn", "##ing"])
        self.assertEqual(self.tok.tokenize("Unwantedx"), ["un", "##want", "##ed", "##x"])
        self.assertEqual(self.tok.tokenize("unwantedz"), ["[UNK]"])  # no piece covers "z"
        self.assertEqual(self.tok.tokenize("bbb"), ["b", "##b", "##b"])
        self.assertEqual(self.tok.tokenize("zebra café"), ["[UNK]", "cafe"])
        self.assertEqual(self.tok.tokenize("x" * 100), ["x"] + ["##x"] * 99)
        self.assertEqual(self.tok.tokenize("x" * 101), ["[UNK]"])

    def test_special_tokens_in_text(self):
        # As in Hugging Face's tokenizers: exact special tokens in the text are
        # kept whole; other bracketed words are plain text.
        self.assertEqual(self.tok.tokenize("a[SEP]b [MASK] [cls]"),
                         ["a", "[SEP]", "b", "[MASK]", "[UNK]", "[UNK]", "[UNK]"])
        self.assertEqual(wordpiece.split_special("x[CLS][PAD]y[UNK", wordpiece.SPECIAL_TOKENS),
                         [("x", False), ("[CLS]", True), ("[PAD]", True), ("y[UNK", False)])

    def test_encode_and_truncation(self):
        ids = self.tok.encode("Hello world.", 16)
        self.assertEqual(ids, [2, VOCAB.index("hello"), VOCAB.index("world"), VOCAB.index("."), 3])
        ids = self.tok.encode("a a a a a a a a", 5)
        self.assertEqual(ids, [2, VOCAB.index("a"), VOCAB.index("a"), VOCAB.index("a"), 3])
        self.assertEqual(self.tok.encode("", 8), [2, 3])
        padded, mask, types = self.tok.pad([2, 7, 3], 6)
        self.assertEqual(padded, [2, 7, 3, 0, 0, 0])
        self.assertEqual(mask, [1, 1, 1, 0, 0, 0])
        self.assertEqual(types, [0] * 6)

    def test_head_tail_truncation(self):
        # The rule of a config.json's truncation_head_tokens, as Go's
        # Tokenizer.WithTruncation applies it (models/tokenizer_test.go).
        body = list(range(10))
        self.assertEqual(wordpiece.truncate(body, 6, 2), [0, 1, 6, 7, 8, 9])
        self.assertEqual(wordpiece.truncate(body, 6, None), [0, 1, 2, 3, 4, 5])
        self.assertEqual(wordpiece.truncate(body, 6, 6), [0, 1, 2, 3, 4, 5])
        self.assertEqual(wordpiece.truncate(body, 12, 2), body)
        self.assertEqual(train.cut(body, 8, self.tok, 2), [2, 0, 1, 6, 7, 8, 9, 3])
        self.assertEqual(train.stage_head(4, 6, 10), 2)
        self.assertEqual(train.stage_head(3, 6, 10), 1)
        self.assertIsNone(train.stage_head(None, 6, 10))
        self.assertEqual(train.keep_ends(body, 4), [0, 1, 8, 9])
        a = VOCAB.index("a")
        tok = self.tok.with_truncation(2, 8)
        text = "hello a a a a a a world"
        ids = tok.encode(text, 8)
        self.assertEqual(ids, [2, VOCAB.index("hello"), a, a, a, a, VOCAB.index("world"), 3])
        # At length 5 the head is 2*3//6 = 1: hello, then the last two.
        self.assertEqual(tok.encode(text, 5), [2, VOCAB.index("hello"), a, VOCAB.index("world"), 3])
        self.assertEqual(self.tok.encode(text, 8)[-2], a)  # the original is unchanged
        with self.assertRaises(ValueError):
            self.tok.with_truncation(7, 8)

    def test_build_vocab(self):
        texts = ["the running man runs", "a runner is running", "runs and runs"] * 3
        tokens = wordpiece.build_vocab(texts, 60)
        self.assertEqual(tokens[:5], list(wordpiece.SPECIAL_TOKENS))
        self.assertLessEqual(len(tokens), 60)
        self.assertEqual(len(tokens), len(set(tokens)))
        tok = wordpiece.Tokenizer(tokens)
        self.assertNotIn("[UNK]", tok.tokenize(" ".join(texts)))
        self.assertIn("running", tokens)

    def test_build_vocab_deterministic(self):
        texts = ["alpha beta gamma", "beta gamma delta", "gamma delta epsilon alpha"] * 2
        self.assertEqual(wordpiece.build_vocab(texts, 40), wordpiece.build_vocab(list(texts), 40))


class SafetensorsTest(unittest.TestCase):
    def test_round_trip(self):
        tensors = {
            "b.f16": torch.randn(3, 4).half(),
            "a.f32": torch.randn(5),
            "c.f64": torch.randn(2, 3, 2, dtype=torch.float64),
            "d.empty": torch.zeros(0, 4),
        }
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.safetensors")
            safetensors_io.save_file(tensors, path, metadata={"format": "pt"})
            with open(path, "rb") as f:
                raw = f.read()
            (n,) = struct.unpack("<Q", raw[:8])
            self.assertEqual(n % 8, 0)
            header = json.loads(raw[8:8 + n])
            self.assertEqual(header["__metadata__"], {"format": "pt"})
            self.assertEqual(header["b.f16"]["dtype"], "F16")
            self.assertEqual(header["a.f32"]["data_offsets"], [0, 20])
            self.assertEqual(len(raw), 8 + n + 24 + 20 + 96)
            back, meta = safetensors_io.load_file(path)
        self.assertEqual(meta, {"format": "pt"})
        self.assertEqual(set(back), set(tensors))
        for k, v in tensors.items():
            self.assertEqual(back[k].dtype, v.dtype)
            self.assertTrue(torch.equal(back[k], v), k)


def tiny_config(**kw):
    args = dict(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=32, max_position_embeddings=16)
    args.update(kw)
    return bert.BertConfig(**args)


class ModelTest(unittest.TestCase):
    def test_state_dict_names(self):
        model = bert.BertForSequenceClassification(tiny_config(num_hidden_layers=3))
        sd = model.state_dict()
        self.assertEqual(list(sd), bert.hf_parameter_names(3))
        self.assertEqual(tuple(sd["bert.encoder.layer.0.intermediate.dense.weight"].shape), (32, 16))
        self.assertEqual(tuple(sd["classifier.weight"].shape), (2, 16))
        self.assertEqual(tuple(sd["bert.embeddings.token_type_embeddings.weight"].shape), (2, 16))

    def test_padding_is_invisible(self):
        torch.manual_seed(0)
        model = bert.BertForSequenceClassification(tiny_config()).double().eval()
        ids = torch.tensor([[2, 5, 6, 7, 3]])
        short = model(ids, torch.ones_like(ids))
        padded = torch.cat([ids, torch.zeros(1, 6, dtype=torch.long)], dim=1)
        mask = torch.tensor([[1] * 5 + [0] * 6])
        long, att = model(padded, mask, output_attentions=True)
        self.assertTrue(torch.allclose(short, long, atol=1e-12, rtol=0))
        self.assertEqual(len(att), 2)
        self.assertEqual(tuple(att[0].shape), (1, 2, 11, 11))
        self.assertTrue(torch.all(att[1][..., 5:] == 0))

    def test_training_reduces_loss(self):
        torch.manual_seed(0)
        cfg = tiny_config()
        tok = wordpiece.Tokenizer(VOCAB)
        texts = ["hello world", "the cafe", "un running", "hello hello world",
                 "the the cafe", "running running"]
        labels = torch.tensor([1, 0, 0, 1, 0, 0])
        ids, mask = train.collate([tok.encode(t, 16) for t in texts], tok.pad_id)
        model = bert.BertForSequenceClassification(cfg)
        mlm = bert.BertMLMHead(cfg, model.bert.embeddings.word_embeddings)
        opt = torch.optim.AdamW(list(model.parameters()) + mlm.parameters_own(), lr=3e-3)
        gen = torch.Generator().manual_seed(0)
        inputs, mlm_labels = train.mask_tokens(ids, mask, tok, cfg.vocab_size, gen)
        self.assertTrue(torch.all(mlm_labels[ids == tok.cls_id] == -100))
        self.assertTrue((mlm_labels != -100).any(dim=1).all())

        def loss_fn():
            h, _, _ = model.bert(inputs, mask)
            sel = mlm_labels != -100
            return F.cross_entropy(model(ids, mask), labels) + F.cross_entropy(mlm(h[sel]), mlm_labels[sel])

        model.eval()
        with torch.no_grad():
            first = float(loss_fn())
        model.train()
        for _ in range(30):
            opt.zero_grad()
            loss_fn().backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            last = float(loss_fn())
        self.assertLess(last, first * 0.7)

    def test_config_json(self):
        d = tiny_config().to_hf_dict(["negative", "positive"])
        self.assertEqual(d["architectures"], ["BertForSequenceClassification"])
        self.assertEqual(d["id2label"], {"0": "negative", "1": "positive"})
        back = bert.BertConfig.from_hf_dict(json.loads(json.dumps(d)))
        self.assertEqual(back, tiny_config())


class MainTest(unittest.TestCase):
    def test_two_trials_end_to_end(self):
        # A few optimizer steps of the whole script on a handful of sentences:
        # MLM, two fine-tuning trials, rounding and the output files.
        words = ["good", "great", "fine", "nice", "bad", "awful", "poor", "sad"]
        rnd = random.Random(0)

        def split(n):
            out = []
            for i in range(n):
                label = i % 2
                pool = words[:4] if label else words[4:]
                out.append({"text": " ".join(rnd.choice(pool) for _ in range(5)), "label": label})
            return out

        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "data", "sentiment"))
            for name, n in (("train", 24), ("validation", 8), ("test", 8)):
                with open(os.path.join(d, "data", "sentiment", name + ".jsonl"), "w") as f:
                    for rec in split(n):
                        f.write(json.dumps(rec) + "\n")
            out = os.path.join(d, "model")
            argv = ["--task", "sentiment", "--preset", "sentiment-tiny", "--out", out,
                    "--data-dir", os.path.join(d, "data"), "--checkpoint-dir", os.path.join(d, "ckpt"),
                    "--vocab-size", "64", "--batch", "8", "--mlm-schedule", "16:1", "--ft-schedule", "16:2",
                    "--ft-seeds", "2", "--threads", "1", "--log-every", "1000"]
            # Unlabelled extra texts for the masked LM: another task's split.
            os.makedirs(os.path.join(d, "data", "spam"))
            with open(os.path.join(d, "data", "spam", "train.jsonl"), "w") as f:
                for rec in split(10):
                    f.write(json.dumps(rec) + "\n")
            # And an unlabelled corpus, as the data command writes it.
            os.makedirs(os.path.join(d, "data", "unlabelled"))
            with open(os.path.join(d, "data", "unlabelled", "sotu.jsonl"), "w") as f:
                for rec in split(6):
                    f.write(json.dumps({"text": rec["text"]}) + "\n")
            argv += ["--mlm-extra", "spam,sotu", "--mlm-extra-max", "8"]
            with contextlib.redirect_stderr(io.StringIO()) as errs:
                metrics = train.main(argv)
            self.assertIn("fine-tuning trial 2 of 2", errs.getvalue())
            self.assertIn("masked-LM extra texts: 10 spam", errs.getvalue())
            self.assertIn("masked-LM extra texts: 6 sotu passages", errs.getvalue())
            self.assertIn("a random 8 of them", errs.getvalue())
            mlm = [h for h in metrics["history"] if h["phase"] == "mlm"]
            self.assertEqual(mlm[0]["step"], 4)  # (24 + 8) texts / batch 8
            trials = [h["trial"] for h in metrics["history"] if h["phase"] == "ft"]
            self.assertEqual(trials, [0, 0, 1, 1])
            best = max((h for h in metrics["history"] if h["phase"] == "ft"),
                       key=lambda h: (h["validation_accuracy"], -h["validation_loss"]))
            self.assertEqual(metrics["best_epoch"]["validation_accuracy"], best["validation_accuracy"])
            for name in ("config.json", "model.safetensors", "vocab.txt", "golden.json", "metrics.json"):
                self.assertTrue(os.path.exists(os.path.join(out, name)), name)
            self.assertFalse(os.path.exists(os.path.join(d, "ckpt", "checkpoint.pt")))

            # Starting from the trained model at learning rate 0 and no
            # masked LM gives back exactly its weights and vocabulary.
            out3 = os.path.join(d, "again")
            argv3 = [a if a != out else out3 for a in argv]
            argv3[argv3.index("--mlm-schedule") + 1] = "16:0"
            argv3[argv3.index("--ft-seeds") + 1] = "1"
            argv3 += ["--init-from", out, "--lr", "0", "--fresh"]
            with contextlib.redirect_stderr(io.StringIO()) as errs:
                train.main(argv3)
            self.assertIn("starting from " + out, errs.getvalue())
            with open(os.path.join(out, "vocab.txt"), "rb") as f, open(os.path.join(out3, "vocab.txt"), "rb") as g:
                self.assertEqual(f.read(), g.read())
            before, _ = safetensors_io.load_file(os.path.join(out, "model.safetensors"))
            after, _ = safetensors_io.load_file(os.path.join(out3, "model.safetensors"))
            self.assertEqual(sorted(before), sorted(after))
            for k in before:  # equal values (an optimizer step of 0 turns -0 into +0)
                self.assertTrue(torch.equal(before[k], after[k]), k)
            with self.assertRaises(SystemExit):  # another shape
                train.main([a if a != "sentiment-tiny" else "spam-mini" for a in argv3])

            # A greedy soup of three trials: the best trial first, the saved
            # model at least as good on validation as every trial alone.
            out2 = os.path.join(d, "soup")
            argv2 = [a if a != out else out2 for a in argv]
            argv2[argv2.index("--ft-seeds") + 1] = "3"
            argv2 += ["--soup", "--fresh"]
            with contextlib.redirect_stderr(io.StringIO()) as errs:
                metrics = train.main(argv2)
            soup = metrics["soup"]
            self.assertEqual(len(soup["trials"]), 3)
            first = soup["members"][0]
            best_alone = max((t["validation_accuracy"], -t["validation_loss"]) for t in soup["trials"])
            t = soup["trials"][first]
            self.assertEqual((t["validation_accuracy"], -t["validation_loss"]), best_alone)
            self.assertGreaterEqual((soup["validation_accuracy"], -soup["validation_loss"]), best_alone)
            self.assertEqual(metrics["best_epoch"]["phase"], "soup")
            self.assertIn("soup: trial", errs.getvalue())


class BaselineTest(unittest.TestCase):
    def test_separable(self):
        data = [("good great fine", 1), ("bad awful poor", 0), ("great good", 1), ("awful bad", 0)] * 3
        result = baseline.run(data, data, data)
        self.assertEqual(result["test_accuracy"], 1.0)


if __name__ == "__main__":
    unittest.main()
