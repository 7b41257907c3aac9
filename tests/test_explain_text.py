"""Token attributions of PyTorch text classifiers (layer Integrated Gradients): the deciding words on top,
completeness, the ways to pass texts and tokens, a tiny Hugging Face BERT into a run, and bad input in one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import mlflow_explain
from mlflow_explain import InvalidInputError

torch = pytest.importorskip("torch")  # the modules below import it, and captum
pytest.importorskip("captum")
pytestmark = pytest.mark.torch

from mlflow_explain.methods.text_integrated_gradients import model_scores, token_integrated_gradients
from mlflow_explain.methods.token_ids import encode_texts
from tests.helpers import NEGATIVE_WORDS, POSITIVE_WORDS, review_texts
from tests.text_models import CLASS_NAMES, padded_ids, three_way_reviews, tiny_bert, trained_review_classifier, word_ids

COMPLETENESS_TOLERANCE = 0.01  # |sum of a text's attributions - (F(text) - F(baseline))| / |F(text) - F(baseline)|


@pytest.fixture(scope="module")
def classifier():
    """The small Transformer review classifier, trained here (a fraction of a second), and its vocabulary."""
    return trained_review_classifier()


@pytest.fixture(scope="module")
def validation_texts():
    return three_way_reviews(60, seed=7)


@pytest.fixture(scope="module")
def attributions(classifier, validation_texts):
    model, vocabulary = classifier
    encoded = encode_texts(validation_texts[0], tokenizer=word_ids(vocabulary), vocabulary=vocabulary)
    return token_integrated_gradients(model, encoded, class_names=CLASS_NAMES)


def test_trained_classifier_puts_its_deciding_words_on_top(attributions, validation_texts):
    means = attributions.token_means()  # signed mean attribution per token and class
    assert set(means["positive"].nlargest(len(POSITIVE_WORDS)).index) == set(POSITIVE_WORDS)
    assert set(means["negative"].nlargest(len(NEGATIVE_WORDS)).index) == set(NEGATIVE_WORDS)
    assert attributions.tokens[0] == validation_texts[0][0].split()  # every word, in reading order, no padding
    assert attributions.output_space == "margin" and attributions.algorithm == "layer integrated gradients"


def test_attributions_add_up_to_the_models_logits_within_one_percent(classifier, attributions, validation_texts):
    model, vocabulary = classifier
    ids, mask = padded_ids(validation_texts[0], vocabulary)
    with torch.no_grad():
        logits = model(ids, mask).numpy()
        baseline = model(torch.where(mask.bool(), torch.zeros_like(ids), ids), mask).numpy()  # every word -> <pad>
    np.testing.assert_allclose(attributions.base_values, baseline, atol=1e-5)
    totals = np.stack([values.sum(axis=0) for values in attributions.values])
    relative = np.abs(totals + baseline - logits).max(axis=1) / np.abs(logits - baseline).max(axis=1)
    assert relative.max() < COMPLETENESS_TOLERANCE
    assert attributions.max_additivity_error < COMPLETENESS_TOLERANCE


def test_ids_with_a_vocabulary_mapping_and_ragged_rows_give_the_same_tokens_and_values(
    classifier, attributions, validation_texts
):
    model, vocabulary = classifier
    texts = validation_texts[0][:5]
    ragged = [word_ids(vocabulary)(text) for text in texts]  # unpadded, one list per text
    by_token = {word: i for i, word in enumerate(vocabulary)}  # token -> id, as Hugging Face's get_vocab()
    encoded = encode_texts(ragged, vocabulary=by_token)
    result = token_integrated_gradients(model, encoded)
    assert result.tokens == attributions.tokens[:5] and result.texts == texts
    for mine, theirs in zip(result.values, attributions.values[:5], strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-5)


def test_explain_text_caps_the_texts_and_keeps_the_users_index(tracking_uri, classifier):
    model, vocabulary = classifier
    texts = pd.Series(review_texts(30, seed=3)[0], index=[f"review-{i}" for i in range(30)])
    config = {"tokens": {"max_texts": 8}, "torch_text": {"n_steps": 16}}
    explanation = mlflow_explain.explain_text(
        model, texts, tokenizer=word_ids(vocabulary), vocabulary=vocabulary, config=config
    )
    tokens = explanation.tokens
    assert len(tokens.texts) == 8 and tokens.n_texts_passed == 30
    assert list(tokens.index_labels) == [f"review-{i}" for i in tokens.row_positions]
    assert tokens.texts == list(texts.iloc[tokens.row_positions])
    assert explanation.task.kind == "multiclass" and tokens.output_names == ["0", "1", "2"]


@pytest.mark.slow
def test_tiny_bert_with_an_in_memory_tokenizer_is_explained_into_a_run(tracking_uri, tmp_path):
    from transformers import PreTrainedTokenizerFast

    texts, _ = review_texts(12, seed=5)
    vocabulary = sorted({word for text in review_texts(2000, seed=1)[0] for word in text.split()})
    model, tokenizer = tiny_bert(vocabulary)
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain_text(model, texts, tokenizer=tokenizer)
    tokens = explanation.tokens
    assert explanation.status == "ok" and tokens.output_names == ["negative", "positive"]
    assert tokens.max_additivity_error < COMPLETENESS_TOLERANCE
    assert tokens.tokens[0] == texts[0].split()  # [CLS], [SEP] and [PAD] are not shown
    encoded = tokenizer.encode_batch(texts)
    with torch.no_grad():
        ids, mask = torch.tensor([e.ids for e in encoded]), torch.tensor([e.attention_mask for e in encoded])
        logits = model(input_ids=ids, attention_mask=mask).logits.numpy()
    np.testing.assert_allclose([tokens.output_values(i) for i in range(len(texts))], logits, atol=0.02)

    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )
    for data in (texts, wrapped(texts, padding=True)):  # texts, or the tokenizer's input_ids and attention_mask
        again = mlflow_explain.explain_text(model, data, tokenizer=wrapped, run_id=run.info.run_id).tokens
        assert again.tokens == tokens.tokens
        np.testing.assert_allclose(np.concatenate(again.values), np.concatenate(tokens.values), atol=1e-5)
    for cutting in (wrapped, tokenizer):  # [CLS], four words, [SEP]: each tokenizer's own truncation
        cut = encode_texts(texts, cutting, max_length=6)
        assert cut.tokens == [text.split()[:4] for text in texts] and cut.n_truncated == len(texts)
        assert wrapped.convert_ids_to_tokens(cut.input_ids[0].tolist()) == ["[CLS]", *texts[0].split()[:4], "[SEP]"]
    assert tokenizer.truncation is None, "the user's tokenizer is left as it was"

    client = MlflowClient()
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics["explain/rows_tokens"] == len(texts)
    assert metrics["explain/tokens_max_additivity_error"] < COMPLETENESS_TOLERANCE
    assert 0 < len([key for key in metrics if key.startswith("tokens_mean_abs/")]) <= 20  # tokens.top_k
    folder = Path(client.download_artifacts(run.info.run_id, "explain", str(tmp_path)))
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["tokens"]["algorithm"] == "layer integrated gradients"
    assert "'bert.embeddings.word_embeddings', the model's get_input_embeddings()" in summary["tokens"]["reason"]
    assert {"tokens/texts.html", "tokens/top_tokens.svg", "shap_values.parquet"} <= set(summary["files"])
    table = pd.read_parquet(folder / "shap_values.parquet")
    first = table[table["row"] == 0]
    assert first["token"].tolist() == texts[0].split()
    np.testing.assert_allclose(
        first["token_value:positive"].sum() + first["token_base_value:positive"].iloc[0], logits[0, 1], atol=0.02
    )
    assert (folder / "tokens" / "texts.html").read_text().count('class="token-text"') == len(texts)
    report = (folder / "report.html").read_text()
    assert "Token attributions" in report and "layer integrated gradients" in report


def test_token_ids_without_a_vocabulary_is_one_clear_sentence(classifier):
    model, vocabulary = classifier
    ids, _ = padded_ids(review_texts(4, seed=0)[0], vocabulary)
    with pytest.raises(InvalidInputError, match=r"^Token ids need vocabulary= .*tokenizer\.$"):
        mlflow_explain.explain_text(model, ids.numpy())


def test_texts_without_a_tokenizer_or_in_a_frame_is_one_clear_sentence(classifier):
    with pytest.raises(InvalidInputError, match=r"^Texts need tokenizer= "):
        mlflow_explain.explain_text(classifier[0], ["a great phone"])
    frame = pd.DataFrame({"review": ["a great phone"], "stars": [5]})
    with pytest.raises(InvalidInputError, match=r"^Pass the texts as one column \(a Series such as X\['review'\]\)"):
        mlflow_explain.explain_text(classifier[0], frame, tokenizer=str.split)


def test_a_model_without_an_embedding_layer_is_one_clear_sentence(classifier):
    _, vocabulary = classifier
    one_hot = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(2))
    encoded = encode_texts([[1, 2, 3]], vocabulary=vocabulary)
    with pytest.raises(InvalidInputError, match=r"^Found no embedding layer in Sequential .* pass embedding_layer="):
        token_integrated_gradients(one_hot, encoded)
    with pytest.raises(InvalidInputError, match="'missing' is not a module of ReviewClassifier"):
        token_integrated_gradients(classifier[0], encoded, embedding_layer="missing")


def test_a_model_returning_no_scores_is_one_clear_sentence(classifier):
    class Embeds(torch.nn.Module):  # returns the embeddings themselves, (n, length, width)
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(5, 3)

        def forward(self, ids):
            return self.embedding(ids)

    with pytest.raises(InvalidInputError, match=r"must return one score per class .*torch.Size\(\[1, 2, 3\]\)"):
        model_scores(Embeds())(torch.tensor([[1, 2]]), torch.ones(1, 2, dtype=torch.long))


def test_a_tokenizers_output_mapping_and_a_cut_are_read_as_given(classifier, caplog):
    _, vocabulary = classifier
    ids = np.array([[5, 6, 7, 0], [8, 9, 0, 0]])
    encoded = encode_texts({"input_ids": ids, "attention_mask": ids != 0}, vocabulary=vocabulary)
    assert encoded.tokens == [vocabulary[5:8], vocabulary[8:10]] and encoded.pad_id == 0
    with caplog.at_level("WARNING"):
        cut = encode_texts(ids, vocabulary=vocabulary, max_length=2)
    assert cut.tokens == [vocabulary[5:7], vocabulary[8:10]] and cut.n_truncated == 1
    assert "1 of 2 texts are longer than 2 tokens" in caplog.text


def test_an_lstm_called_on_ids_alone_adds_up_to_its_scores():
    class LstmClassifier(torch.nn.Module):  # forward(ids): no attention mask, padding read by the LSTM
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(12, 8)
            self.lstm = torch.nn.LSTM(8, 8, batch_first=True)
            self.head = torch.nn.Linear(8, 4)

        def forward(self, ids):
            return self.head(self.lstm(self.embedding(ids))[0][:, -1])

    torch.manual_seed(0)
    vocabulary = ["[PAD]", *[f"w{i}" for i in range(1, 12)]]
    result = token_integrated_gradients(LstmClassifier(), encode_texts([[3, 4, 5, 6], [7, 1]], vocabulary=vocabulary))
    assert result.output_names == ["0", "1", "2", "3"] and result.output_space == "margin"
    assert result.max_additivity_error < COMPLETENESS_TOLERANCE
    assert [len(values) for values in result.values] == [4, 2]


def test_ids_whose_padding_cannot_be_told_is_one_clear_sentence():
    with pytest.raises(InvalidInputError, match=r"^Cannot tell which token id pads the texts: set torch_text\."):
        encode_texts([[1, 2], [3]], vocabulary=["a", "b", "c", "d"])
