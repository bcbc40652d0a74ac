"""Regenerates hf_tokenizer_cases.json: hand-picked and random texts with the
basic tokens ("words") and ids that Hugging Face's BertTokenizer gives them
with vocab.txt. Run from models/testdata with a Python 3 interpreter.

Random code points unassigned in Python's Unicode database are replaced,
since Go's unicode tables are of a later version (see tokenizer.go).
"""

import json
import random
import unicodedata

from hf_reference_tokenizer import BertTokenizer

HAND_PICKED = [
    "Hello, world!", "This movie was NOT good.", "Café", "cafe\u0301", "CAFÉ naïve", "foo\u00a0bar",
    "foo\u3000bar", "foo\u2028bar", "foo\u2029bar", "foo\u0085bar", "foo\u000bbar", "foo\u000cbar",
    "foo\u200bbar", "foo\ufeffbar", "foo\u00adbar", "HELLO\tworld\u0001!", "x\u0000y", "x\ufffdy",
    "\ue000x", "中国", "the中国film", "\u3400x\u4dbf", "unbelievable", "playing played plays", "don't",
    "\"free money\" -- click here!!!", "ΟΔΟΣ", "όσος", "İ", "   ", "", "hello[SEP]world",
    "[CLS] [cls] [MASK]x", "[SEP", "a\u0301\u0302", "$100 10 1000", "x\u2019y", "\u00bfqu\u00e9?",
    "x\u00b7y", "ﬁlm", "Ⅻ", "\u1e9e", "a\u030a", "ǅ", "Ａ", "x\u0378y", "hello\r\nworld", "😀 good",
    "a" * 100, "a" * 101, "x\u00e9\u00e9\u00e9",
]


def random_cases(rng):
    palette = (
        list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 4
        + list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") * 2
        + [" "] * 12 + ["\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\xa0", "\u1680", "\u2003",
                        "\u2028", "\u2029", "\u202f", "\u3000"]
        + ["\x00", "\x01", "\x7f", "\u200b", "\u200d", "\ufeff", "\u00ad", "\ufffd", "\ue000", "\U000f0000"]
        + list("éÉèàçñÑöÖüÜåÅøØßẞæÆłŁİıǅǄǆ") + ["e\u0301", "a\u0308", "\u0301", "o\u0302\u0323", "\u0345", "\u20dd"]
        + list("ΑΒΓΔΣσςάέΌΏΐ") + list("АБВабвЁё") + list("中国日本語한국어ひらがなカタカナ")
        + list("ﬁﬂⅫ①²½Ａｚ") + list("¿¡«»“”‘’—–…·•§¶†‡") + ["😀", "👍🏽", "\U0001F1FA\U0001F1F8"]
        + ["[SEP]", "[CLS]", "[PAD]", "[UNK]", "[MASK]", "[sep]", "[SEP", "MASK]"]
        + ["\u0600", "\u061c", "\u0e01\u0e34", "\u0915\u094d\u0937"]
    )
    cases = []
    for _ in range(400):
        cases.append("".join(rng.choice(palette) for _ in range(rng.randint(0, 40))))
    for _ in range(100):
        chars = []
        for _ in range(rng.randint(1, 12)):
            cp = rng.choice([rng.randint(0x20, 0x2FF), rng.randint(0x300, 0xFFFF), rng.randint(0x10000, 0x2FFFF)])
            if 0xD800 <= cp <= 0xDFFF or unicodedata.category(chr(cp)) == "Cn":
                cp = 0x41
            chars.append(chr(cp))
        cases.append("".join(chars))
    return cases


def main():
    tok = BertTokenizer("vocab.txt")
    cases = HAND_PICKED + random_cases(random.Random(20240611))
    out = [{"text": c, "words": tok.words(c), "ids": tok.ids(c)} for c in cases]
    with open("hf_tokenizer_cases.json", "w", encoding="utf-8") as f:
        f.write('{"unicode_version": %s, "cases": [\n' % json.dumps(unicodedata.unidata_version))
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in out))
        f.write("\n]}\n")


if __name__ == "__main__":
    main()
