"""BERT uncased WordPiece tokenization and a WordPiece vocabulary builder.

The tokenizer reproduces the Hugging Face ``BertTokenizer`` (``do_lower_case=True``,
``tokenize_chinese_chars=True``, ``strip_accents=None``) on ordinary text:

1. Clean the text: drop U+0000, U+FFFD and every "control" character (Unicode
   category C*, except ``\\t``, ``\\n``, ``\\r``); replace every whitespace
   character (``' '``, ``\\t``, ``\\n``, ``\\r`` or category Zs) with a space.
2. Put a space on both sides of every CJK ideograph (the BERT ranges below).
3. Split on whitespace (Python ``str.split()``; on cleaned text that is the
   space and U+2028/U+2029, the same set as Go's ``strings.Fields``).
4. Lowercase each word (``str.lower()``) and strip accents: NFD-decompose and
   drop every character of category Mn.
5. Split each word around punctuation: ASCII 33-47, 58-64, 91-96, 123-126 and
   every character of Unicode category P*; each punctuation character becomes
   a word of its own.
6. WordPiece each word greedily, longest match first, continuation pieces
   prefixed with ``##``; a word longer than 100 characters, or one that cannot
   be covered by vocabulary pieces, becomes the single token ``[UNK]``.

An encoded input is ``[CLS] pieces... [SEP]`` truncated (pieces are dropped
from the end, or with a head count from the middle: ``truncate``) to at most
``max_len`` ids; token type ids are all 0. Special
tokens written in the input text (such as a literal ``"[CLS]"``) are NOT
recognised: they are split like any other text.

The vocabulary builder learns a WordPiece vocabulary the way the Hugging Face
``WordPieceTrainer`` does: byte-pair-style merges over the basic words of the
training texts, in which the first character of a word is a plain piece and
every later one a ``##`` piece.  The vocabulary lists the special tokens
first (``[PAD]``=0, ``[UNK]``=1, ``[CLS]``=2, ``[SEP]``=3, ``[MASK]``=4), then
the alphabet, then the merged pieces in the order they were learned.
"""

import collections
import copy
import heapq
import unicodedata

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
CONTINUATION = "##"
MAX_INPUT_CHARS_PER_WORD = 100

# CJK Unified Ideographs and their extensions, as in BERT's _is_chinese_char.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_whitespace(ch):
    """Reports whether ch is whitespace for BERT: space, tab, newline, CR or Zs."""
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def is_control(ch):
    """Reports whether ch is a BERT control character (category C*, not tab/newline/CR)."""
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch).startswith("C")


def is_punctuation(ch):
    """Reports whether ch is BERT punctuation: ASCII non-alphanumeric symbols or category P*."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    """Reports whether the code point cp is a CJK ideograph in BERT's sense."""
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def clean_text(text):
    """Drops NUL, U+FFFD and control characters and turns whitespace into spaces."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or is_control(ch):
            continue
        out.append(" " if is_whitespace(ch) else ch)
    return "".join(out)


def pad_cjk(text):
    """Surrounds every CJK ideograph with spaces."""
    out = []
    for ch in text:
        if is_cjk(ord(ch)):
            out.extend((" ", ch, " "))
        else:
            out.append(ch)
    return "".join(out)


def strip_accents(text):
    """NFD-decomposes text and drops the nonspacing marks (category Mn)."""
    return "".join(
        ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn"
    )


def split_punctuation(word):
    """Splits word so that every punctuation character stands alone."""
    pieces = []
    current = []
    for ch in word:
        if is_punctuation(ch):
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(ch)
        else:
            current.append(ch)
    if current:
        pieces.append("".join(current))
    return pieces


def basic_tokenize(text):
    """Returns the lowercased, accent-stripped, punctuation-split words of text."""
    text = pad_cjk(clean_text(text))
    words = []
    for word in text.split():
        word = strip_accents(word.lower())
        words.extend(split_punctuation(word))
    return words


def wordpiece(word, vocab, max_chars=MAX_INPUT_CHARS_PER_WORD):
    """Greedy longest-match-first WordPiece of one basic word.

    Returns a list of vocabulary strings, or [UNK] when the word is longer
    than max_chars characters or cannot be covered by vocabulary pieces.
    """
    if len(word) > max_chars:
        return [UNK]
    pieces = []
    start = 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            piece = word[start:end]
            if start > 0:
                piece = CONTINUATION + piece
            if piece in vocab:
                found = piece
                break
            end -= 1
        if found is None:
            return [UNK]
        pieces.append(found)
        start = end
    return pieces


def load_vocab(path):
    """Reads vocab.txt (one token a line, id = line number) into a list."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def save_vocab(tokens, path):
    """Writes tokens to path, one a line, in id order."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for tok in tokens:
            f.write(tok + "\n")


def split_special(text, specials):
    """Splits text around every exact occurrence of a special token, left to right.

    Returns (chunk, is_special) pairs; no special token is a prefix of another.
    """
    chunks, start, i = [], 0, 0
    while i < len(text):
        if text[i] != "[":
            i += 1
            continue
        matched = next((sp for sp in specials if text.startswith(sp, i)), None)
        if matched is None:
            i += 1
            continue
        if start < i:
            chunks.append((text[start:i], False))
        chunks.append((matched, True))
        i += len(matched)
        start = i
    if start < len(text):
        chunks.append((text[start:], False))
    return chunks


class Tokenizer:
    """A BERT uncased WordPiece tokenizer over a fixed vocabulary."""

    def __init__(self, tokens):
        self.tokens = list(tokens)
        self.vocab = {tok: i for i, tok in enumerate(self.tokens)}
        if len(self.vocab) != len(self.tokens):
            raise ValueError("vocabulary has duplicate tokens")
        for tok in SPECIAL_TOKENS:
            if tok not in self.vocab:
                raise ValueError("vocabulary lacks %s" % tok)
        self.pad_id = self.vocab[PAD]
        self.unk_id = self.vocab[UNK]
        self.cls_id = self.vocab[CLS]
        self.sep_id = self.vocab[SEP]
        self.mask_id = self.vocab[MASK]
        self._cache = {}
        self.truncation_head = None  # set by with_truncation
        self.truncation_span = None

    def with_truncation(self, head, positions):
        """Returns a copy whose encode keeps, of a long input, the first
        head body tokens and the last positions-2-head at max_len =
        positions (head scaled by (max_len-2)/(positions-2), rounded down,
        at a shorter max_len): a config.json's truncation_head_tokens.
        head None or 0 gives back the default (the first tokens)."""
        if head is not None and not 0 <= head <= positions - 2:
            raise ValueError("truncation head %r is outside 0..%d" % (head, positions - 2))
        out = copy.copy(self)
        out.truncation_head = head or None
        out.truncation_span = positions - 2 if head else None
        return out

    @classmethod
    def from_file(cls, path):
        """Loads a tokenizer from a vocab.txt file."""
        return cls(load_vocab(path))

    def __len__(self):
        return len(self.tokens)

    def tokenize(self, text):
        """Returns the WordPiece strings of text, without [CLS] and [SEP] added.

        As Hugging Face's tokenizers (and the Go tokenizer) do, a special
        token written in the text ("[SEP]", exact case) is split out first and
        kept as that token; the rest is normalized and split into words.
        """
        out = []
        for chunk, special in split_special(text, SPECIAL_TOKENS):
            if special:
                out.append(chunk)
            else:
                out.extend(self._tokenize_plain(chunk))
        return out

    def _tokenize_plain(self, text):
        out = []
        for word in basic_tokenize(text):
            pieces = self._cache.get(word)
            if pieces is None:
                pieces = wordpiece(word, self.vocab)
                if len(self._cache) < 1_000_000:
                    self._cache[word] = pieces
            out.extend(pieces)
        return out

    def encode(self, text, max_len, head=None):
        """Returns the ids of [CLS] tokens [SEP], truncated to at most max_len
        ids by truncate (head: see there; by default the tokenizer's own, see
        with_truncation)."""
        if max_len < 2:
            raise ValueError("max_len must be at least 2")
        if head is None and self.truncation_head:
            head = self.truncation_head * (max_len - 2) // self.truncation_span
        ids = truncate([self.vocab[p] for p in self.tokenize(text)], max_len - 2, head)
        return [self.cls_id] + ids + [self.sep_id]

    def pad(self, ids, n):
        """Pads ids to length n; returns (input_ids, attention_mask, token_type_ids)."""
        if len(ids) > n:
            raise ValueError("sequence of %d ids is longer than %d" % (len(ids), n))
        padding = n - len(ids)
        return (
            ids + [self.pad_id] * padding,
            [1] * len(ids) + [0] * padding,
            [0] * n,
        )


def truncate(ids, span, head=None):
    """Cuts ids to at most span of them: the first span without head, else
    the first head and the last span - head (head >= span keeps the first
    span). This is the rule of a config.json's truncation_head_tokens."""
    if len(ids) <= span:
        return list(ids)
    if head is None or head >= span:
        return list(ids[:span])
    if head < 0:
        raise ValueError("head must be non-negative")
    return list(ids[:head]) + list(ids[len(ids) - (span - head):])


def build_vocab(texts, vocab_size, min_frequency=2, max_alphabet=500):
    """Learns a WordPiece vocabulary of at most vocab_size tokens from texts.

    The alphabet holds the characters of the basic words that occur at least
    min_frequency times (at most max_alphabet of them, most frequent first),
    each as a word-initial piece and, where seen inside a word, as a ``##``
    piece.  Then the most frequent adjacent pair of pieces is merged, again
    and again (ties broken by the pieces' strings, so the result is
    deterministic), until the vocabulary is full or no pair occurs
    min_frequency times.  Returns the token list, special tokens first.
    """
    word_counts = collections.Counter()
    for text in texts:
        word_counts.update(basic_tokenize(text))

    # Alphabet: characters by frequency, word-initial and continuation forms.
    char_counts = collections.Counter()
    for word, count in word_counts.items():
        if len(word) > MAX_INPUT_CHARS_PER_WORD:
            continue
        for ch in word:
            char_counts[ch] += count
    chars = [c for c, n in sorted(char_counts.items(), key=lambda kv: (-kv[1], kv[0]))
             if n >= min_frequency][:max_alphabet]
    alphabet = set(chars)
    initial, inner = set(), set()
    for word in word_counts:
        if len(word) > MAX_INPUT_CHARS_PER_WORD:
            continue
        if word[0] in alphabet:
            initial.add(word[0])
        inner.update(ch for ch in word[1:] if ch in alphabet)
    tokens = list(SPECIAL_TOKENS)
    tokens += [c for c in chars if c in initial]
    tokens += [CONTINUATION + c for c in chars if c in inner]
    if len(tokens) > vocab_size:
        raise ValueError("vocab_size %d is smaller than the alphabet (%d)" % (vocab_size, len(tokens)))
    seen = set(tokens)

    # Words as lists of pieces; words with characters outside the alphabet
    # can never be covered, so they do not take part in the merges.
    words, counts = [], []
    for word, count in sorted(word_counts.items()):
        if len(word) > MAX_INPUT_CHARS_PER_WORD or any(ch not in alphabet for ch in word):
            continue
        words.append([word[0]] + [CONTINUATION + ch for ch in word[1:]])
        counts.append(count)

    pair_counts = collections.Counter()
    pair_words = collections.defaultdict(set)
    for i, pieces in enumerate(words):
        for a, b in zip(pieces, pieces[1:]):
            pair_counts[(a, b)] += counts[i]
            pair_words[(a, b)].add(i)
    heap = [(-n, pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)

    def merged(a, b):
        return a + b[len(CONTINUATION):]

    while len(tokens) < vocab_size and heap:
        neg, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -neg:
            continue  # stale heap entry
        if -neg < min_frequency:
            break
        a, b = pair
        new = merged(a, b)
        if new not in seen:
            seen.add(new)
            tokens.append(new)
        changed = collections.Counter()
        for i in sorted(pair_words.pop(pair, ())):
            pieces, count = words[i], counts[i]
            j, out = 0, []
            while j < len(pieces):
                if j + 1 < len(pieces) and pieces[j] == a and pieces[j + 1] == b:
                    out.append(new)
                    j += 2
                else:
                    out.append(pieces[j])
                    j += 1
            if len(out) == len(pieces):
                continue
            for p in zip(pieces, pieces[1:]):
                changed[p] -= count
            for p in zip(out, out[1:]):
                changed[p] += count
                pair_words[p].add(i)
            words[i] = out
        del pair_counts[pair]
        for p, delta in changed.items():
            if p == pair or delta == 0:
                continue
            pair_counts[p] += delta
            if pair_counts[p] <= 0:
                del pair_counts[p]
            else:
                heapq.heappush(heap, (-pair_counts[p], p))
    return tokens
