"""Texts or token ids turned into padded token-id batches and their readable tokens, for text models (no MLflow).

A PyTorch text classifier reads token ids; its explanation shows tokens. :func:`encode_texts`
takes what a user has at hand (texts and a tokenizer, or token ids and a vocabulary) and returns
one :class:`EncodedTexts`: the ids padded to one length, which positions are real tokens
(``attention_mask``), which are special tokens the tokenizer added (``[CLS]``, ``[SEP]``: kept in
an attribution baseline, not shown) and each text's shown tokens in reading order.

Tokenizers understood: a Hugging Face tokenizer (anything with ``convert_ids_to_tokens``, called
on a list of texts), a ``tokenizers.Tokenizer`` (``encode_batch``), or any callable str -> ids
(with a vocabulary to name the ids).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError

logger = logging.getLogger(__name__)

PAD_TOKENS = ("[PAD]", "<pad>", "<PAD>", "[pad]", "<|pad|>")  # names a vocabulary gives its padding token


@dataclasses.dataclass
class EncodedTexts:
    """Texts as token ids padded to one length (n, length), and what each position is.

    ``shown`` marks the positions whose tokens are shown and attributed (real tokens that are not
    special tokens); ``tokens[i]`` are text ``i``'s shown tokens in reading order.
    """

    texts: list[str]
    input_ids: np.ndarray
    attention_mask: np.ndarray
    special_mask: np.ndarray
    tokens: list[list[str]]
    pad_id: int
    n_truncated: int = 0  # texts cut to max_length tokens

    @property
    def shown(self) -> np.ndarray:
        return (self.attention_mask == 1) & ~self.special_mask

    def take(self, positions: np.ndarray) -> EncodedTexts:
        """The texts at ``positions``, padded to their own longest text."""
        length = max(int(self.attention_mask[positions].sum(axis=1).max(initial=1)), 1)
        return dataclasses.replace(
            self,
            texts=[self.texts[i] for i in positions],
            input_ids=self.input_ids[positions, :length],
            attention_mask=self.attention_mask[positions, :length],
            special_mask=self.special_mask[positions, :length],
            tokens=[self.tokens[i] for i in positions],
        )


def encode_texts(
    data: Any,
    tokenizer: Any = None,
    vocabulary: Sequence[str] | Mapping | None = None,
    pad_id: int | None = None,
    max_length: int = 256,
) -> EncodedTexts:
    """Token ids, masks and readable tokens of ``data``: texts with a tokenizer, or token ids with a vocabulary.

    Parameters
    ----------
    data : list or Series of str, 2-D int array or Tensor, list of lists of ints, or a mapping
        Texts (tokenized by ``tokenizer``), token ids (one row per text, padded with ``pad_id`` or
        ragged), or a tokenizer's output (``input_ids`` and optionally ``attention_mask``).
    tokenizer : Hugging Face tokenizer, tokenizers.Tokenizer or callable str -> ids, default=None
        Needed for texts; names the tokens of token ids when ``vocabulary`` is not given.
    vocabulary : list of str or mapping, default=None
        The token of each id: a list (position = id), a mapping id -> token, or token -> id.
    pad_id : int, default=None
        The padding id; default the tokenizer's, else a padding token of the vocabulary.
    max_length : int, default=256
        Tokens kept per text (longer texts are cut; the count is in ``n_truncated``).

    Returns
    -------
    EncodedTexts

    Raises
    ------
    InvalidInputError
        On texts without a tokenizer, ids without a vocabulary or tokenizer, ids out of the
        vocabulary, or no way to tell the padding id.
    """
    if isinstance(data, str):
        raise InvalidInputError("Pass a list of texts (or a pandas Series), not a single string: [text].")
    if hasattr(data, "columns"):
        columns = list(data.columns)
        raise InvalidInputError(
            f"Pass the texts as one column (a Series such as X[{columns[0] if columns else 'text'!r}]) or a list, "
            f"not a DataFrame of {len(columns)} columns."
        )
    if isinstance(data, Mapping):
        if "input_ids" not in data:
            raise InvalidInputError(
                "A mapping of token ids must hold 'input_ids' (and optionally 'attention_mask'), "
                f"as a tokenizer returns them; it has {sorted(map(str, data))}."
            )
        return _from_ids(data["input_ids"], data.get("attention_mask"), tokenizer, vocabulary, pad_id, max_length)
    rows = list(data.tolist() if hasattr(data, "tolist") else data)
    if not rows:
        raise InvalidInputError("No texts to explain: the data is empty.")
    if all(isinstance(row, str) for row in rows):
        return _from_texts(rows, tokenizer, vocabulary, pad_id, max_length)
    return _from_ids(rows, None, tokenizer, vocabulary, pad_id, max_length)


def _from_texts(
    texts: list[str], tokenizer: Any, vocabulary: Sequence[str] | Mapping | None, pad_id: int | None, max_length: int
) -> EncodedTexts:
    if tokenizer is None:
        raise InvalidInputError(
            "Texts need tokenizer= (a Hugging Face tokenizer, a tokenizers.Tokenizer, or a callable text -> token "
            "ids) to become the token ids the model reads; or pass token ids with vocabulary=."
        )
    if hasattr(tokenizer, "convert_ids_to_tokens"):  # Hugging Face (transformers) tokenizer
        ids, specials, n_cut = _hugging_face_ids(tokenizer, texts, max_length)
        pad_id = _first_known(pad_id, getattr(tokenizer, "pad_token_id", None))
        names = [tokenizer.convert_ids_to_tokens(row) for row in ids]
    elif hasattr(tokenizer, "encode_batch"):  # tokenizers.Tokenizer
        ids, specials, names, n_cut = _tokenizers_ids(tokenizer, texts, max_length)
        padding = tokenizer.padding or {}
        pad_id = _first_known(pad_id, padding.get("pad_id"), *(tokenizer.token_to_id(name) for name in PAD_TOKENS))
    elif callable(tokenizer):
        n_cut = 0
        ids = [[int(i) for i in tokenizer(text)] for text in texts]
        specials = [[0] * len(row) for row in ids]
        names = [_lookup(row, vocabulary, tokenizer=None) for row in ids]
        pad_id = _first_known(pad_id, _vocabulary_pad(vocabulary))
    else:
        raise InvalidInputError(
            f"tokenizer= must be a Hugging Face tokenizer, a tokenizers.Tokenizer or a callable text -> token ids, "
            f"not {type(tokenizer).__name__}."
        )
    return _padded(texts, ids, specials, names, pad_id, max_length, n_cut)


def _from_ids(
    ids: Any,
    attention_mask: Any,
    tokenizer: Any,
    vocabulary: Sequence[str] | Mapping | None,
    pad_id: int | None,
    max_length: int,
) -> EncodedTexts:
    if vocabulary is None and not hasattr(tokenizer, "convert_ids_to_tokens") and not hasattr(tokenizer, "id_to_token"):
        raise InvalidInputError(
            "Token ids need vocabulary= (a list or a mapping id -> token) or tokenizer= (a Hugging Face tokenizer "
            "or a tokenizers.Tokenizer) to name their tokens; or pass the texts with a tokenizer."
        )
    rows = [_int_row(row) for row in (ids.tolist() if hasattr(ids, "tolist") else ids)]
    pad_id = _first_known(
        pad_id,
        getattr(tokenizer, "pad_token_id", None),
        (getattr(tokenizer, "padding", None) or {}).get("pad_id"),
        _vocabulary_pad(vocabulary),
    )
    if attention_mask is not None:
        masks = attention_mask.tolist() if hasattr(attention_mask, "tolist") else attention_mask
        rows = [[i for i, flag in zip(row, mask, strict=True) if flag] for row, mask in zip(rows, masks, strict=True)]
    elif pad_id is not None:
        rows = [[i for i in row if i != pad_id] for row in rows]
    special_ids = set(getattr(tokenizer, "all_special_ids", ())) - {pad_id}
    specials = [[int(i in special_ids) for i in row] for row in rows]
    names = [_lookup(row, vocabulary, tokenizer) for row in rows]
    return _padded([" ".join(row) for row in names], rows, specials, names, pad_id, max_length)


def _padded(
    texts: list[str],
    ids: list[list[int]],
    specials: list[list[int]],
    names: list[list[str]],
    pad_id: int | None,
    max_length: int,
    n_cut: int = 0,
) -> EncodedTexts:
    """The texts' ids right-padded to the longest (at most ``max_length``), their masks and shown tokens.

    Longer texts are cut here; ``n_cut`` counts those the tokenizer already cut.
    """
    if pad_id is None:
        raise InvalidInputError(
            "Cannot tell which token id pads the texts: set torch_text.pad_token_id in the config (or give the "
            "tokenizer a padding token, or the vocabulary a token named [PAD] or <pad>)."
        )
    n_truncated = n_cut + sum(len(row) > max_length for row in ids)
    if n_truncated:
        logger.warning(
            "%d of %d texts are longer than %d tokens and were cut to it.", n_truncated, len(ids), max_length
        )
    length = max(1, max(min(len(row), max_length) for row in ids))
    input_ids = np.full((len(ids), length), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(ids), length), dtype=np.int64)
    special_mask = np.zeros((len(ids), length), dtype=bool)
    tokens = []
    for i, (row, special, name) in enumerate(zip(ids, specials, names, strict=True)):
        row, special, name = row[:max_length], special[:max_length], name[:max_length]
        input_ids[i, : len(row)] = row
        attention_mask[i, : len(row)] = 1
        special_mask[i, : len(row)] = np.asarray(special, dtype=bool)
        tokens.append([token for token, flag in zip(name, special, strict=True) if not flag])
    return EncodedTexts(list(texts), input_ids, attention_mask, special_mask, tokens, int(pad_id), n_truncated)


def _hugging_face_ids(tokenizer: Any, texts: list[str], max_length: int) -> tuple[list, list, int]:
    """Ids and special-token masks of the texts by a Hugging Face tokenizer, texts over ``max_length`` tokens cut by
    the tokenizer itself (keeping its closing special tokens); and how many were cut."""
    encoded = tokenizer(list(texts), return_special_tokens_mask=True)
    ids, specials = list(encoded["input_ids"]), list(encoded["special_tokens_mask"])
    long = [i for i, row in enumerate(ids) if len(row) > max_length]
    if long:
        longer = [texts[i] for i in long]
        cut = tokenizer(longer, truncation=True, max_length=max_length, return_special_tokens_mask=True)
        for i, row, special in zip(long, cut["input_ids"], cut["special_tokens_mask"], strict=True):
            ids[i], specials[i] = row, special
    return ids, specials, len(long)


def _tokenizers_ids(tokenizer: Any, texts: list[str], max_length: int) -> tuple[list, list, list, int]:
    """Ids, special-token masks and tokens of the texts by a ``tokenizers.Tokenizer`` (its own padding left out),
    texts over ``max_length`` tokens cut by a copy of it with truncation on (keeping its closing special tokens); and
    how many were cut."""
    encodings = tokenizer.encode_batch(list(texts))
    long = [i for i, encoding in enumerate(encodings) if sum(encoding.attention_mask) > max_length]
    if long:
        cutting = type(tokenizer).from_str(tokenizer.to_str())  # the user's tokenizer is left as it is
        cutting.enable_truncation(max_length)
        for i, encoding in zip(long, cutting.encode_batch([texts[i] for i in long]), strict=True):
            encodings[i] = encoding
    ids, specials, names = [], [], []
    for encoding in encodings:
        real = [i for i, flag in enumerate(encoding.attention_mask) if flag]
        ids.append([encoding.ids[i] for i in real])
        specials.append([encoding.special_tokens_mask[i] for i in real])
        names.append([encoding.tokens[i] for i in real])
    return ids, specials, names, len(long)


def _lookup(row: list[int], vocabulary: Sequence[str] | Mapping | None, tokenizer: Any) -> list[str]:
    """The tokens of ids ``row``, from the vocabulary, else the tokenizer."""
    if vocabulary is None and tokenizer is not None:
        if hasattr(tokenizer, "convert_ids_to_tokens"):
            return list(tokenizer.convert_ids_to_tokens(row))
        return [tokenizer.id_to_token(i) or str(i) for i in row]
    if vocabulary is None:
        raise InvalidInputError(
            "A callable tokenizer returns only ids: pass vocabulary= (a list or a mapping id -> token) to name them."
        )
    table = _id_to_token(vocabulary)
    unknown = sorted({i for i in row if i not in table})
    if unknown:
        raise InvalidInputError(
            f"Token ids {unknown[:5]} are not in the vocabulary of {len(table)} tokens: pass the vocabulary the "
            "model was trained with."
        )
    return [table[i] for i in row]


def _id_to_token(vocabulary: Sequence[str] | Mapping) -> dict[int, str]:
    """A vocabulary as id -> token, whether given as a list, id -> token or token -> id."""
    if isinstance(vocabulary, Mapping):
        items = list(vocabulary.items())
        if items and isinstance(items[0][0], str) and not isinstance(items[0][1], str):
            return {int(index): str(token) for token, index in items}
        return {int(index): str(token) for index, token in items}
    return {index: str(token) for index, token in enumerate(vocabulary)}


def _vocabulary_pad(vocabulary: Sequence[str] | Mapping | None) -> int | None:
    """The id of the vocabulary's padding token (named [PAD], <pad>...), if it has one."""
    if vocabulary is None:
        return None
    by_token = {token: index for index, token in _id_to_token(vocabulary).items()}
    return _first_known(*(by_token.get(name) for name in PAD_TOKENS))


def _first_known(*candidates: int | None) -> int | None:
    return next((int(value) for value in candidates if value is not None), None)


def _int_row(row: Any) -> list[int]:
    if np.isscalar(row):
        raise InvalidInputError("Token ids must hold one row of ids per text (2-D), not a single row of ids.")
    values = list(row.tolist() if hasattr(row, "tolist") else row)
    if not all(isinstance(value, (int, np.integer)) and not isinstance(value, bool) for value in values):
        raise InvalidInputError(
            "Texts must be strings and token ids integers; the data mixes them or holds something else "
            f"(a row starts {values[:3]!r})."
        )
    return [int(value) for value in values]
