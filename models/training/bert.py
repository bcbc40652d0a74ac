"""A BERT encoder for sequence classification with Hugging Face parameter names.

``BertForSequenceClassification.state_dict()`` has exactly the names of the
Hugging Face ``transformers`` class of the same name (Linear weights are
``[out_features, in_features]``)::

    bert.embeddings.{word,position,token_type}_embeddings.weight
    bert.embeddings.LayerNorm.{weight,bias}
    bert.encoder.layer.N.attention.self.{query,key,value}.{weight,bias}
    bert.encoder.layer.N.attention.output.dense.{weight,bias}
    bert.encoder.layer.N.attention.output.LayerNorm.{weight,bias}
    bert.encoder.layer.N.intermediate.dense.{weight,bias}
    bert.encoder.layer.N.output.dense.{weight,bias}
    bert.encoder.layer.N.output.LayerNorm.{weight,bias}
    bert.pooler.dense.{weight,bias}
    classifier.{weight,bias}

The computation is the original BERT: absolute position embeddings, post-LN
residual blocks, exact (erf) GELU, LayerNorm with ``config.layer_norm_eps``,
pooled output ``tanh(W h_CLS + b)`` and a linear classifier on it; dropout
only in training mode.  Padded key positions get the additive mask
``torch.finfo(dtype).min`` before the softmax, so in float64 their attention
probability underflows to exactly 0 and the outputs at real positions do not
depend on how much padding follows.

``BertMLMHead`` is the masked-language-model head (``cls.predictions.*`` in
Hugging Face, decoder tied to the word embeddings); it is a separate module so
that the classification checkpoint never contains it.
"""

import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F


@dataclasses.dataclass
class BertConfig:
    """The fields of a Hugging Face BertConfig that this model uses."""

    vocab_size: int = 4000
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 512
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 128
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    num_labels: int = 2

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        if self.hidden_act != "gelu":
            raise ValueError("only hidden_act 'gelu' (exact erf GELU) is supported")

    def to_hf_dict(self, labels):
        """Returns a Hugging Face config.json dict; labels lists the class names by id."""
        return {
            "architectures": ["BertForSequenceClassification"],
            "model_type": "bert",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "hidden_act": self.hidden_act,
            "hidden_dropout_prob": self.hidden_dropout_prob,
            "attention_probs_dropout_prob": self.attention_probs_dropout_prob,
            "max_position_embeddings": self.max_position_embeddings,
            "type_vocab_size": self.type_vocab_size,
            "initializer_range": self.initializer_range,
            "layer_norm_eps": self.layer_norm_eps,
            "pad_token_id": self.pad_token_id,
            "position_embedding_type": "absolute",
            "classifier_dropout": None,
            "id2label": {str(i): name for i, name in enumerate(labels)},
            "label2id": {name: i for i, name in enumerate(labels)},
            "problem_type": "single_label_classification",
            "torch_dtype": "float16",
        }

    @classmethod
    def from_hf_dict(cls, d):
        """Builds a config from a Hugging Face config.json dict."""
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in fields}
        if "id2label" in d:
            kwargs["num_labels"] = len(d["id2label"])
        return cls(**kwargs)


class BertEmbeddings(nn.Module):
    """Word + position + token type embeddings, LayerNorm, dropout."""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size,
                                            padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids=None):
        n = input_ids.shape[1]
        positions = torch.arange(n, device=input_ids.device).unsqueeze(0)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(token_type_ids))
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention (query/key/value projections)."""

    def __init__(self, config):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        # HE-friendly training (set by the trainer): (lo, hi, floor), or None.
        self.range_window = None
        self.range_penalty = None

    def _heads(self, x):
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_size).transpose(1, 2)

    def forward(self, x, additive_mask):
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size)
        if self.range_window is not None:
            self.range_penalty = attention_range_penalty(scores, additive_mask, *self.range_window)
        scores = scores + additive_mask
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(self.dropout(probs), v)
        b, _, n, _ = ctx.shape
        return ctx.transpose(1, 2).reshape(b, n, self.num_heads * self.head_size), probs


class BertSelfOutput(nn.Module):
    """Attention output projection, dropout, residual and LayerNorm."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h, residual):
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class BertAttention(nn.Module):
    """Self-attention followed by its output block."""

    def __init__(self, config):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, x, additive_mask):
        ctx, probs = self.self(x, additive_mask)
        return self.output(ctx, x), probs


class BertIntermediate(nn.Module):
    """The first feed-forward projection with exact GELU."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, x):
        return F.gelu(self.dense(x))


class BertOutput(nn.Module):
    """The second feed-forward projection, dropout, residual and LayerNorm."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h, residual):
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class BertLayer(nn.Module):
    """One post-LN encoder layer."""

    def __init__(self, config):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, x, additive_mask):
        a, probs = self.attention(x, additive_mask)
        return self.output(self.intermediate(a), a), probs


class BertEncoder(nn.Module):
    """The stack of encoder layers."""

    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x, additive_mask, output_attentions=False):
        attentions = []
        for layer in self.layer:
            x, probs = layer(x, additive_mask)
            if output_attentions:
                attentions.append(probs)
        return x, attentions


class BertPooler(nn.Module):
    """tanh(dense(h_CLS))."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


def attention_range_penalty(scores, additive_mask, lo, hi, floor):
    """The HE-friendly attention penalty of one layer (a scalar tensor).

    The encrypted softmax computes exp(s - c) with a public shift c (the
    trainer's shift is folded into lo, hi and floor), sums each row and takes
    the reciprocal of the sum with a polynomial that is only accurate on a
    fixed interval; it cannot subtract a row's maximum. This penalty keeps
    every real query row's log-sum-exp of its real keys' logits inside
    [lo, hi] (so the row sum lies in [e^lo, e^hi]) and every real logit above
    floor (the exp polynomial's interval), by squared hinges averaged over
    rows and logits. A row-wise shift leaves softmax unchanged and the key
    bias can supply it, so the penalty costs the model little.
    """
    valid_key = (additive_mask == 0).to(scores.dtype)  # [B, 1, 1, n]
    valid_query = valid_key.transpose(-1, -2)  # [B, 1, n, 1]
    lse = torch.logsumexp(scores + additive_mask, dim=-1, keepdim=True)  # [B, h, n, 1]
    row = (F.relu(lse - hi) ** 2 + F.relu(lo - lse) ** 2) * valid_query
    low = (F.relu(floor - scores) ** 2) * valid_query * valid_key
    heads = scores.shape[1]
    rows = valid_query.sum() * heads
    return row.sum() / rows + low.sum() / (rows * valid_key.sum(-1).mean())


def additive_attention_mask(attention_mask, dtype):
    """Turns a [B, n] 0/1 mask into a [B, 1, 1, n] additive key mask of 0 / finfo(dtype).min."""
    m = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - m) * torch.finfo(dtype).min


class BertModel(nn.Module):
    """Embeddings, encoder and pooler."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_attentions=False):
        """Returns (last hidden states [B, n, d], pooled [B, d], list of per-layer attention
        probabilities [B, heads, n, n], empty unless output_attentions)."""
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError("sequence length %d exceeds max_position_embeddings %d"
                             % (input_ids.shape[1], self.config.max_position_embeddings))
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)
        mask = additive_attention_mask(attention_mask, x.dtype)
        h, attentions = self.encoder(x, mask, output_attentions)
        return h, self.pooler(h), attentions


class BertForSequenceClassification(nn.Module):
    """BERT with a linear classifier on the pooled [CLS] output."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.apply(lambda m: init_weights(m, config.initializer_range))

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_attentions=False):
        """Returns the logits [B, num_labels], or (logits, attentions) if output_attentions."""
        _, pooled, attentions = self.bert(input_ids, attention_mask, token_type_ids, output_attentions)
        logits = self.classifier(self.dropout(pooled))
        if output_attentions:
            return logits, attentions
        return logits


class BertMLMHead(nn.Module):
    """The masked-LM head: dense, GELU, LayerNorm, then a decoder tied to the word embeddings."""

    def __init__(self, config, word_embeddings):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.word_embeddings = word_embeddings  # shared, not owned
        init_weights(self.dense, config.initializer_range)

    def parameters_own(self):
        """The head's own parameters (excluding the tied word embeddings)."""
        return [self.dense.weight, self.dense.bias, self.LayerNorm.weight, self.LayerNorm.bias, self.bias]

    def forward(self, h):
        """Returns vocabulary logits for hidden states h [..., d]."""
        t = self.LayerNorm(F.gelu(self.dense(h)))
        return F.linear(t, self.word_embeddings.weight, self.bias)


def init_weights(module, std):
    """BERT initialization: normal(0, std) weights, zero biases, LayerNorm at identity."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, 0.0, std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def hf_parameter_names(num_layers):
    """The Hugging Face state_dict names of BertForSequenceClassification, in order."""
    names = [
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.embeddings.LayerNorm.bias",
    ]
    for i in range(num_layers):
        p = "bert.encoder.layer.%d." % i
        for lin in ("attention.self.query", "attention.self.key", "attention.self.value",
                    "attention.output.dense"):
            names += [p + lin + ".weight", p + lin + ".bias"]
        names += [p + "attention.output.LayerNorm.weight", p + "attention.output.LayerNorm.bias"]
        names += [p + "intermediate.dense.weight", p + "intermediate.dense.bias"]
        names += [p + "output.dense.weight", p + "output.dense.bias"]
        names += [p + "output.LayerNorm.weight", p + "output.LayerNorm.bias"]
    names += ["bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"]
    return names
