"""Rewrites a trained model's tokenizer_golden.json from its vocab.txt.

The tokenizer golden file only depends on the vocabulary and the tokenizer
code, so a change to the tokenizer (not to the vocabulary) needs no
retraining. Run from the repository root:

    /usr/bin/python3 -m models.training.regolden --model models/trained/sentiment-tiny --task sentiment
"""

import argparse
import json
import os

from . import train, wordpiece


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="trained model directory")
    p.add_argument("--task", required=True, choices=sorted(train.LABELS))
    p.add_argument("--data-dir", default=os.environ.get("CIPHERPRUNE_DATA")
                   or os.path.join(os.path.expanduser("~"), ".cache", "cipherprune"))
    args = p.parse_args(argv)
    tok = wordpiece.Tokenizer.from_file(os.path.join(args.model, "vocab.txt"))
    with open(os.path.join(args.model, "config.json"), encoding="utf-8") as f:
        hf = json.load(f)
    n = hf["max_position_embeddings"]
    test = train.read_split(args.data_dir, args.task, "test")
    train.write_json(os.path.join(args.model, "tokenizer_golden.json"),
                     train.tokenizer_golden(tok, n, [t for t, _ in test[:4]], hf.get("truncation_head_tokens")))


if __name__ == "__main__":
    main()
