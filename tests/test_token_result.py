"""The shared result type of token attributions (TokenResult): its token table, importances, summary and metrics."""

from __future__ import annotations

import numpy as np
import pytest

from mlflow_explain.results import RESULT_TYPES, Explanation, Task, TokenResult, tabular_result_types


def _result(top_k: int = 20) -> TokenResult:
    """Two texts of a binary classifier explained in the margin (the negative class the mirror image)."""
    positive = [np.array([0.5, 2.0, -0.25]), np.array([2.0, 1.0])]
    return TokenResult(
        texts=["the great box", "great great"],
        tokens=[["the", "great", "box"], ["great", "great"]],
        values=[np.stack([-v, v], axis=1) for v in positive],
        base_values=np.array([[-0.1, 0.1], [-0.1, 0.1]]),
        output_names=["neg", "pos"],
        output_space="margin",
        algorithm="linear",
        reason="exact",
        row_positions=np.array([3, 7]),
        column=None,
        top_k=top_k,
    )


def test_it_is_a_registered_tabular_method():
    assert RESULT_TYPES["tokens"] is TokenResult and "tokens" in tabular_result_types()
    explanation = Explanation(Task("binary", (0, 1)), ["text"], 2, {}, results={"tokens": _result()})
    assert explanation.tokens is explanation.results["tokens"]


def test_outputs_add_up_and_the_shown_output_is_the_predicted_class():
    result = _result()
    np.testing.assert_allclose(result.output_values(0), [-2.35, 2.35])
    assert result.explained_output(0) == 1


def test_token_means_sum_a_tokens_occurrences_per_text_then_average_over_the_texts():
    result = _result()
    signed = result.token_means()
    assert signed.loc["great", "pos"] == pytest.approx((2.0 + 3.0) / 2)
    assert signed.loc["box", "pos"] == pytest.approx(-0.25 / 2)
    assert result.token_means(absolute=True).loc["box", "neg"] == pytest.approx(0.25 / 2)
    frame = result.token_frame()
    assert list(frame.columns) == ["text", "position", "token", "neg", "pos"]
    assert frame["position"].tolist() == [0, 1, 2, 0, 1]


def test_importances_are_bounded_by_top_k_and_rank_the_largest_first():
    result = _result(top_k=2)
    table = Explanation(Task("binary", (0, 1)), ["text"], 2, {}, results={"tokens": result}).importances
    assert table["output"].unique().tolist() == ["all"]
    assert table.sort_values("rank")["feature"].tolist() == ["great", "the"]
    assert result.unit_names == ["great", "the"]


def test_a_multiclass_result_has_one_block_per_class():
    values = [np.array([[1.0, -1.0, 0.0]]), np.array([[0.0, 0.0, 2.0]])]
    result = TokenResult(
        texts=["a", "b"],
        tokens=[["a"], ["b"]],
        values=values,
        base_values=np.zeros((2, 3)),
        output_names=["x", "y", "z"],
        output_space="probability",
        algorithm="text masking",
        reason="",
        row_positions=np.arange(2),
        column="review",
    )
    blocks = result.importance_blocks(Task("multiclass", ("x", "y", "z")))
    assert [block[0] for block in blocks] == ["all", "x", "y", "z"]
    assert blocks[3][1] == ["b", "a"] and blocks[3][2][0] == pytest.approx(1.0)


def test_summary_and_run_metrics_say_what_ran():
    result = _result()
    result.max_additivity_error = 1e-9
    summary = result.summary()
    assert summary["algorithm"] == "linear" and summary["n_texts"] == 2 and summary["n_tokens"] == 5
    assert summary["n_distinct_tokens"] == 3 and summary["top_k"] == 20
    assert result.run_metrics() == {"explain/rows_tokens": 2, "explain/tokens_max_additivity_error": 1e-9}
