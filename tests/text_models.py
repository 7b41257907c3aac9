"""Small PyTorch text classifiers for the token tests: an embedding, a Transformer encoder, a masked mean-pool.

Trained on the generated reviews of ``tests/helpers.review_texts`` (a few deciding words among
filler words), and a tiny Hugging Face BERT built from a config with a word-level tokenizer built in
memory (nothing downloaded).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tests.helpers import NEGATIVE_WORDS, POSITIVE_WORDS, review_texts

PAD = "<pad>"
CLASS_NAMES = ["negative", "positive", "neutral"]


def three_way_reviews(n_texts: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Generated reviews in three classes: negative (a word of ``NEGATIVE_WORDS``), positive (a word of
    ``POSITIVE_WORDS``) and neutral (neither: a third of the reviews, their deciding word taken out), so that
    both kinds of deciding word matter to a classifier."""
    texts, labels = review_texts(n_texts, seed)
    deciding = set(POSITIVE_WORDS) | set(NEGATIVE_WORDS)
    neutral = np.random.RandomState(seed).rand(n_texts) < 1 / 3
    for i in np.flatnonzero(neutral):
        texts[i] = " ".join(word for word in texts[i].split() if word not in deciding)
    return texts, np.where(neutral, 2, labels)


def review_vocabulary() -> list[str]:
    """Every word of the generated reviews, the padding token first (id 0)."""
    texts, _ = review_texts(2000, seed=1)
    words = sorted({word for text in texts for word in text.split()} | set(POSITIVE_WORDS) | set(NEGATIVE_WORDS))
    return [PAD, *words]


class ReviewClassifier(nn.Module):
    """Token ids -> embedding -> one Transformer encoder layer -> mean over the real tokens -> a logit per class."""

    def __init__(self, vocabulary_size: int, width: int = 16):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, width, padding_idx=0)
        layer = nn.TransformerEncoderLayer(width, 2, 32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(width, len(CLASS_NAMES))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        real = attention_mask.bool()
        hidden = self.encoder(self.embedding(input_ids), src_key_padding_mask=~real)
        pooled = (hidden * real[..., None]).sum(dim=1) / real.sum(dim=1, keepdim=True)
        return self.head(pooled)


def word_ids(vocabulary: list[str]):
    """A callable tokenizer: a text's words as ids of ``vocabulary``."""
    index = {word: i for i, word in enumerate(vocabulary)}
    return lambda text: [index[word] for word in text.split()]


def padded_ids(texts: list[str], vocabulary: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The texts' ids right-padded with 0, and their attention mask."""
    tokenize = word_ids(vocabulary)
    rows = [tokenize(text) for text in texts]
    ids = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return ids, (ids != 0).long()


def trained_review_classifier(seed: int = 0) -> tuple[ReviewClassifier, list[str]]:
    """A :class:`ReviewClassifier` trained for 60 full-batch epochs on 400 :func:`three_way_reviews`, and its
    vocabulary."""
    torch.manual_seed(seed)
    vocabulary = review_vocabulary()
    texts, labels = three_way_reviews(400, seed=seed)
    ids, mask = padded_ids(texts, vocabulary)
    model = ReviewClassifier(len(vocabulary))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    target = torch.from_numpy(np.asarray(labels))
    for _ in range(60):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(ids, mask), target).backward()
        optimizer.step()
    return model.eval(), vocabulary


def tiny_bert(vocabulary: list[str], seed: int = 0):
    """A BertForSequenceClassification from a tiny config (2 layers, hidden 32, labels negative/positive) and a
    tokenizers.Tokenizer (word level, [CLS] ... [SEP], padding) on ``vocabulary``, both built in memory."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *vocabulary]
    ids = {token: i for i, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.WordLevel(ids, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])]
    )
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokens),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    return BertForSequenceClassification(config).eval(), tokenizer
