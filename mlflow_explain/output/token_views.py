"""The views of token attributions (a :class:`~mlflow_explain.results.TokenResult`, whatever computed it): the top
tokens per class as a signed bar chart and a table (ELI5's ``show_weights``), and each text with its tokens
highlighted red (towards the class) or blue (away from it) by value, as shap's text plot draws them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..keys import file_parts
from ..results import Explanation, TokenResult
from .svg import Chart, Drawing, format_fixed, significant_decimals

_POSITIVE, _NEGATIVE = "#ff0051", "#008bfb"  # shap's red (pushes the output up) and blue (down)
_POSITIVE_RGB, _NEGATIVE_RGB = (255, 0, 81), (0, 139, 251)
_ROW = 22.0  # pixels per token row
_SPACES = {"margin": "log-odds", "probability": "probability", "prediction": "prediction"}


def shown_outputs(result: TokenResult) -> list[int]:
    """The outputs the top-token views are drawn for: the positive class of a binary classifier (the negative one is
    its mirror image), every class of a multiclass one, the prediction of a regressor."""
    return [1] if len(result.output_names) == 2 else list(range(len(result.output_names)))


def top_tokens(result: TokenResult, output: int, per_side: int = 10) -> pd.DataFrame:
    """The ``per_side`` tokens with the largest mean attribution to ``output`` and the ``per_side`` with the
    smallest (most negative), largest first: columns token, weight (the signed mean over the texts),
    mean_abs and texts (how many texts contain the token)."""
    name = result.output_names[output]
    signed = result.token_means()[name]
    frame = pd.DataFrame(
        {
            "token": signed.index.astype(str),
            "weight": signed.to_numpy(),
            "mean_abs": result.token_means(absolute=True)[name].to_numpy(),
        }
    )
    frame["texts"] = frame["token"].map(_text_counts(result)).to_numpy()
    frame = frame.sort_values("weight", ascending=False, kind="stable")
    positive, negative = frame[frame["weight"] > 0], frame[frame["weight"] < 0]
    return pd.concat([positive.head(per_side), negative.tail(per_side)], ignore_index=True)


def top_tokens_bar(result: TokenResult, output: int, per_side: int = 10) -> Chart:
    """A signed bar per token, top tokens towards ``output`` (red) above those against it (blue)."""
    table = top_tokens(result, output, per_side)
    weights = table["weight"].to_numpy()
    chart = Chart(
        f"Top tokens: {_output_title(result, output)}",
        f"mean attribution over the {len(result.texts)} texts ({unit(result)})",
        plot_height=_ROW * max(len(table), 1),
    )
    chart.y.categories = [_short(token) for token in table["token"]][::-1] or ["(no token)"]
    positions = np.arange(len(table))[::-1]
    decimals = significant_decimals(weights, digits=3) if len(weights) else 3
    texts = [format_fixed(weight, decimals, sign=True) for weight in weights]
    chart.hbars(
        positions,
        np.zeros(len(table)),
        weights,
        [_POSITIVE if weight > 0 else _NEGATIVE for weight in weights],
        tooltips=[f"{token}: {text}" for token, text in zip(table["token"], texts, strict=True)],
    )
    for y, weight, text in zip(positions, weights, texts, strict=True):
        chart.text(
            weight,
            y,
            text,
            anchor="start" if weight > 0 else "end",
            dx=4 if weight > 0 else -4,
            size=10,
        )
    chart.rule(x=0.0)
    low, high = min(float(weights.min(initial=0.0)), 0.0), max(float(weights.max(initial=0.0)), 0.0)
    room = 0.15 * (high - low or 1.0)  # for the value written beyond each bar's end
    chart.x.limits = (low - (room if low < 0 else 0.0), high + (room if high > 0 else 0.0))
    return chart


def token_figures(result: TokenResult, explanation: Explanation, dependence_top_k: int) -> dict[str, Drawing]:
    """``tokens/top_tokens.svg`` (the positive class, or the prediction), or one ``tokens/top_tokens.<class>.svg`` per
    class of a multiclass model."""
    outputs = shown_outputs(result)
    if len(outputs) == 1:
        return {"tokens/top_tokens.svg": top_tokens_bar(result, outputs[0])}
    names = file_parts(result.output_names)
    return {f"tokens/top_tokens.{names[result.output_names[k]]}.svg": top_tokens_bar(result, k) for k in outputs}


def highlighted_text(result: TokenResult, text: int) -> dict[str, Any]:
    """One text for the highlighted view: its title, the output shown (the predicted class), base value and output,
    and each token with its value, background colour (opacity: |value| over the text's largest) and tooltip."""
    output = result.explained_output(text)
    values = result.values[text][:, output] if len(result.tokens[text]) else np.zeros(0)
    largest = float(np.abs(values).max(initial=0.0)) or 1.0
    tokens = [
        {
            "token": token,
            "value": float(value),
            "colour": _background(float(value) / largest),
            "tooltip": f"{token}: {format_fixed(float(value), 4, sign=True)}",
        }
        for token, value in zip(result.tokens[text], values, strict=True)
    ]
    label = None if result.index_labels is None else result.index_labels[text]
    return {
        "title": f"row {int(result.row_positions[text])}" + ("" if label is None else f" (index {label})"),
        "output": _output_title(result, output) + (" (predicted)" if len(result.output_names) > 1 else ""),
        "base": float(result.base_values[text, output]),
        "value": float(result.output_values(text)[output]),
        "tokens": tokens,
    }


def token_tables(result: TokenResult, per_side: int = 10) -> list[dict[str, Any]]:
    """For each shown output: its title and ELI5-style rows (token, signed weight, shade: share of the largest)."""
    tables = []
    for output in shown_outputs(result):
        table = top_tokens(result, output, per_side)
        largest = float(table["weight"].abs().max()) if len(table) else 1.0
        rows = [
            {
                "token": row.token,
                "weight": row.weight,
                "mean_abs": row.mean_abs,
                "texts": int(row.texts),
                "colour": _background(row.weight / (largest or 1.0)),
            }
            for row in table.itertuples()
        ]
        tables.append({"title": _output_title(result, output), "rows": rows})
    return tables


def unit(result: TokenResult) -> str:
    """The unit of the attributions in words: log-odds, probability or prediction."""
    return _SPACES.get(result.output_space, result.output_space)


def _output_title(result: TokenResult, output: int) -> str:
    name = result.output_names[output]
    return name if name == "prediction" else f"class {name}"


def _text_counts(result: TokenResult) -> dict[str, int]:
    counts: dict[str, int] = {}
    for tokens in result.tokens:
        for token in set(tokens):
            counts[token] = counts.get(token, 0) + 1
    return counts


def _background(share: float) -> str:
    """shap's red for a positive share of the largest |value|, blue for a negative one, opaque in proportion."""
    red, green, blue = _POSITIVE_RGB if share > 0 else _NEGATIVE_RGB
    return f"rgba({red}, {green}, {blue}, {min(abs(share), 1.0) * 0.85:.2f})"


def _short(token: str, limit: int = 30) -> str:
    return token if len(token) <= limit else token[: limit - 1] + "…"
