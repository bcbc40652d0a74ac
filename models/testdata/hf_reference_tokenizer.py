"""A transcription of Hugging Face transformers' BertTokenizer (the slow,
pure-Python one) with do_lower_case=True, used only to produce the expected
outputs of hf_tokenizer_cases.json (see make_tokenizer_cases.py).

It keeps the details that decide the ids: PreTrainedTokenizer.tokenize
lowercases the text one character at a time (so no final-sigma rule) except
the special tokens, splits the special tokens out, and BasicTokenizer
cleans the text, pads CJK ideographs, applies NFC, splits on whitespace,
strips accents (NFD, drop Mn) and splits on punctuation, before WordPiece.
"""
import re, sys, json, unicodedata, collections

def load_vocab(path):
    vocab = collections.OrderedDict()
    with open(path, "r", encoding="utf-8") as reader:
        tokens = reader.readlines()
    for index, token in enumerate(tokens):
        token = token.rstrip("\n")
        vocab[token] = index
    return vocab

def whitespace_tokenize(text):
    text = text.strip()
    if not text:
        return []
    return text.split()

def _is_whitespace(char):
    if char == " " or char == "\t" or char == "\n" or char == "\r":
        return True
    return unicodedata.category(char) == "Zs"

def _is_control(char):
    if char == "\t" or char == "\n" or char == "\r":
        return False
    return unicodedata.category(char).startswith("C")

def _is_punctuation(char):
    cp = ord(char)
    if (cp >= 33 and cp <= 47) or (cp >= 58 and cp <= 64) or (cp >= 91 and cp <= 96) or (cp >= 123 and cp <= 126):
        return True
    return unicodedata.category(char).startswith("P")

class Basic:
    def __init__(self, never_split):
        self.never_split = set(never_split)
    def tokenize(self, text):
        never_split = self.never_split
        text = self._clean_text(text)
        text = self._tokenize_chinese_chars(text)
        text = unicodedata.normalize("NFC", text)
        orig_tokens = whitespace_tokenize(text)
        split_tokens = []
        for token in orig_tokens:
            if token not in never_split:
                token = token.lower()
                token = self._run_strip_accents(token)
            split_tokens.extend(self._run_split_on_punc(token, never_split))
        return whitespace_tokenize(" ".join(split_tokens))
    def _run_strip_accents(self, text):
        text = unicodedata.normalize("NFD", text)
        return "".join(c for c in text if unicodedata.category(c) != "Mn")
    def _run_split_on_punc(self, text, never_split=None):
        if never_split is not None and text in never_split:
            return [text]
        chars = list(text)
        i = 0
        start_new_word = True
        output = []
        while i < len(chars):
            char = chars[i]
            if _is_punctuation(char):
                output.append([char])
                start_new_word = True
            else:
                if start_new_word:
                    output.append([])
                start_new_word = False
                output[-1].append(char)
            i += 1
        return ["".join(x) for x in output]
    def _tokenize_chinese_chars(self, text):
        output = []
        for char in text:
            cp = ord(char)
            if self._is_chinese_char(cp):
                output.append(" "); output.append(char); output.append(" ")
            else:
                output.append(char)
        return "".join(output)
    def _is_chinese_char(self, cp):
        return ((cp >= 0x4E00 and cp <= 0x9FFF) or (cp >= 0x3400 and cp <= 0x4DBF) or (cp >= 0x20000 and cp <= 0x2A6DF)
            or (cp >= 0x2A700 and cp <= 0x2B73F) or (cp >= 0x2B740 and cp <= 0x2B81F) or (cp >= 0x2B820 and cp <= 0x2CEAF)
            or (cp >= 0xF900 and cp <= 0xFAFF) or (cp >= 0x2F800 and cp <= 0x2FA1F))
    def _clean_text(self, text):
        output = []
        for char in text:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD or _is_control(char):
                continue
            if _is_whitespace(char):
                output.append(" ")
            else:
                output.append(char)
        return "".join(output)

class WordPiece:
    def __init__(self, vocab, unk_token="[UNK]", max_input_chars_per_word=100):
        self.vocab = vocab; self.unk_token = unk_token; self.max_input_chars_per_word = max_input_chars_per_word
    def tokenize(self, text):
        output_tokens = []
        for token in whitespace_tokenize(text):
            chars = list(token)
            if len(chars) > self.max_input_chars_per_word:
                output_tokens.append(self.unk_token); continue
            is_bad = False; start = 0; sub_tokens = []
            while start < len(chars):
                end = len(chars); cur_substr = None
                while start < end:
                    substr = "".join(chars[start:end])
                    if start > 0:
                        substr = "##" + substr
                    if substr in self.vocab:
                        cur_substr = substr; break
                    end -= 1
                if cur_substr is None:
                    is_bad = True; break
                sub_tokens.append(cur_substr); start = end
            if is_bad:
                output_tokens.append(self.unk_token)
            else:
                output_tokens.extend(sub_tokens)
        return output_tokens

class BertTokenizer:
    def __init__(self, vocab_file):
        self.vocab = load_vocab(vocab_file)
        self.specials = [t for t in ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"] if t in self.vocab]
        self.basic = Basic(self.specials)
        self.wp = WordPiece(self.vocab)
    def tokenize(self, text):
        esc = [re.escape(s) for s in self.specials]
        pattern = r"(" + r"|".join(esc) + r")|" + r"(.+?)"
        text = re.sub(pattern, lambda m: m.groups()[0] or m.groups()[1].lower(), text, flags=re.DOTALL)
        # trie split on specials (leftmost)
        parts = re.split("(" + "|".join(esc) + ")", text)
        out = []
        for p in parts:
            if not p:
                continue
            if p in self.specials:
                out.append(p)
            else:
                for tok in self.basic.tokenize(p):
                    if tok in self.basic.never_split:
                        out.append(tok)
                    else:
                        out.extend(self.wp.tokenize(tok))
        return out
    def words(self, text):
        """The basic tokens: what WordPiece sees, special tokens included."""
        esc = [re.escape(s) for s in self.specials]
        pattern = r"(" + r"|".join(esc) + r")|" + r"(.+?)"
        text = re.sub(pattern, lambda m: m.groups()[0] or m.groups()[1].lower(), text, flags=re.DOTALL)
        out = []
        for p in re.split("(" + "|".join(esc) + ")", text):
            if not p:
                continue
            if p in self.specials:
                out.append(p)
            else:
                out.extend(self.basic.tokenize(p))
        return out
    def ids(self, text):
        return [self.vocab.get(t, self.vocab["[UNK]"]) for t in self.tokenize(text)]
