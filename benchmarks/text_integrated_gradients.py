"""Token attributions of PyTorch text classifiers (layer Integrated Gradients): seconds for 200 texts, completeness.

    python benchmarks/text_integrated_gradients.py [--texts 200] [--threads 1]

Two models, as the tests build them (``tests/text_models.py``), each explaining the same 200
generated reviews (``tests/helpers.review_texts``, 7-15 words) for every class:

- the review classifier (embedding 16, one Transformer encoder layer, masked mean-pool, 3 classes),
  trained here for 60 full-batch epochs, texts tokenized by a callable with a vocabulary;
- a BertForSequenceClassification from a tiny config (2 layers, hidden 32, 2 classes, random
  weights), texts tokenized by a ``tokenizers.Tokenizer`` built in memory ([CLS] ... [SEP]).

For each: ``n_steps`` 25, 50 and 100 with the default batching (16 texts per Captum call), and 100
steps one text per call (what a loop over texts would do), side by side in one run. Printed: seconds
for all texts, milliseconds per text, and the completeness error (``max_additivity_error``: the
largest |sum of a text's attributions - (F(text) - F(baseline))| over the text's largest
|F(text) - F(baseline)|).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlflow_explain.methods.text_integrated_gradients import token_integrated_gradients  # noqa: E402
from mlflow_explain.methods.token_ids import encode_texts  # noqa: E402
from tests.helpers import review_texts  # noqa: E402
from tests.text_models import tiny_bert, trained_review_classifier, word_ids  # noqa: E402

SETTINGS = [(25, 16), (50, 16), (100, 16), (100, 1)]  # (n_steps, texts per Captum call)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from run import machine  # benchmarks/ is on the path when run as a script

    texts, _ = review_texts(args.texts, seed=11)
    classifier, vocabulary = trained_review_classifier()
    bert, tokenizer = tiny_bert(vocabulary[1:])
    cases = {
        "Transformer classifier (3 classes)": (classifier, encode_texts(texts, word_ids(vocabulary), vocabulary)),
        "tiny BERT (2 classes)": (bert, encode_texts(texts, tokenizer)),
    }
    print(f"Machine: {machine()}; torch threads {torch.get_num_threads()}\n")
    print("| model | texts | n_steps | texts per call | seconds | ms per text | max_additivity_error |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (model, encoded) in cases.items():
        for n_steps, batch_size in SETTINGS:
            started = time.perf_counter()
            result = token_integrated_gradients(model, encoded, n_steps=n_steps, batch_size=batch_size)
            seconds = time.perf_counter() - started
            print(
                f"| {name} | {len(texts)} | {n_steps} | {batch_size} | {seconds:.2f} | "
                f"{1000 * seconds / len(texts):.1f} | {result.max_additivity_error:.2%} |"
            )


if __name__ == "__main__":
    main()
