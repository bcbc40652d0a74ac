"""Regenerates testdata/tiny-torch: a tiny random BERT classifier written and
evaluated by the project's PyTorch model (models/training/bert.py), so the Go
forward is checked against an independent implementation without trained
weights. Run from models/testdata with /usr/bin/python3 (needs python3-torch).
"""

import json
import os
import shutil
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "training"))
import bert  # noqa: E402
import safetensors_io  # noqa: E402
import wordpiece  # noqa: E402

OUT = os.path.join(HERE, "tiny-torch")
N = 16
TEXTS = [
    "Hello, world!",
    "This movie was NOT good.",
    "the film is great",
    "unbelievable playing, bad cafe",
    "free money!!! click here",
    "中国 naïve café",
    "i don't like this film at all, it was bad and not even the cafe scene was good",
]


def main():
    torch.manual_seed(1234)
    tok = wordpiece.Tokenizer.from_file(os.path.join(HERE, "vocab.txt"))
    cfg = bert.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=32, max_position_embeddings=24, type_vocab_size=2,
                          initializer_range=0.3, layer_norm_eps=1e-12, num_labels=3)
    model = bert.BertForSequenceClassification(cfg)
    with torch.no_grad():  # non-trivial LayerNorm parameters and biases
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(0.2 * torch.randn_like(p))
    half = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    exact = bert.BertForSequenceClassification(cfg).double()
    exact.load_state_dict({k: v.to(torch.float64) for k, v in half.items()})
    exact.eval()

    os.makedirs(OUT, exist_ok=True)
    labels = ["negative", "neutral", "positive"]
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(cfg.to_hf_dict(labels), f, indent=1)
        f.write("\n")
    safetensors_io.save_file(half, os.path.join(OUT, "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(os.path.join(HERE, "vocab.txt"), os.path.join(OUT, "vocab.txt"))
    golden = {"model": "tiny-torch", "n": N, "dtype": "float64", "examples": []}
    with torch.no_grad():
        for text in TEXTS:
            ids, mask, types = tok.pad(tok.encode(text, N), N)
            logits = exact(torch.tensor([ids]), torch.tensor([mask]), torch.tensor([types]))[0]
            golden["examples"].append({"text": text, "input_ids": ids, "attention_mask": mask,
                                       "logits": logits.tolist()})
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
