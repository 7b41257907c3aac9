"""Make the documentation's gallery from real runs: ``python docs/gallery.py``.

Trains small models on scikit-learn's bundled data (and generated reviews), explains each into a
throwaway SQLite MLflow store, and copies every figure and report the runs hold into
``docs/gallery/``, with the page ``docs/gallery/index.md`` that shows them. The output is committed,
so building the docs trains nothing; run this again after a change to the figures or the report.
Takes a minute or two on a CPU; the image case needs the ``torch`` extra.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))  # the digits CNN of examples/gradcam_digits.py

import mlflow_explain  # noqa: E402

GALLERY = Path(__file__).resolve().with_name("gallery")
FIGURE_SUFFIXES = (".svg", ".html", ".png")
logger = logging.getLogger("gallery")


@dataclass(frozen=True)
class Case:
    """One kind of explained run in the gallery: its folder under docs/gallery/, title, and what it shows."""

    folder: str
    title: str
    about: str
    artifact_path: str = "explain"


TABULAR_CLASSIFIER = Case(
    "tabular_classifier",
    "Tabular classifier (random forest)",
    "A random forest on scikit-learn's breast-cancer data (30 features, binary). "
    "The second of two forests, so its report also compares it with the first.",
)
TABULAR_REGRESSOR = Case(
    "tabular_regressor",
    "Tabular regressor (gradient boosting)",
    "A gradient-boosting regressor on scikit-learn's diabetes data (10 features).",
)
MULTICLASS = Case(
    "multiclass",
    "Multiclass classifier (logistic regression)",
    "A scaled logistic regression on scikit-learn's wine data (13 features, 3 classes): figures per class.",
)
TEXT = Case(
    "text",
    "Text classifier (TF-IDF + logistic regression)",
    "A TF-IDF + logistic regression Pipeline on generated reviews, explained word by word.",
)
IMAGES = Case(
    "images",
    "Image classifier (CNN on digits)",
    "A small CNN trained on scikit-learn's 8 x 8 digits, explained by Grad-CAM and Integrated Gradients.",
)
COMPARISON = Case(
    "comparison",
    "Comparing runs",
    "`mlflow_explain.compare` over the two breast-cancer forests: heatmaps, rank shifts and a report.",
    artifact_path="compare",
)
CASES = (TABULAR_CLASSIFIER, TABULAR_REGRESSOR, MULTICLASS, TEXT, IMAGES, COMPARISON)
# The order a reader meets the figures in: global importances first, then single features, rows, comparisons.
FIGURE_ORDER = (
    "permutation_importance",
    "shap_bar",
    "shap_beeswarm",
    "dependence/",
    "local/",
    "tokens/",
    "gradcam/",
    "integrated_gradients/",
    "importance_heatmap",
    "rank_shift",
    "compare/",
)
PAGES = {"report.html": "the report", "texts.html": "every text"}


def use_experiment(name: str) -> None:
    """Make ``name`` the active experiment, its artifacts beside the throwaway store (not in ./mlruns)."""
    store = Path(mlflow.get_tracking_uri().removeprefix("sqlite:///")).parent
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=(store / "artifacts" / name.replace(" ", "_")).as_uri())
    mlflow.set_experiment(name)


def breast_cancer_forests() -> str:
    """Two random forests on breast cancer, the second compared with the first (drift, rank plot)."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    use_experiment("gallery breast cancer")
    run_ids = []
    for seed in (0, 1):
        with mlflow.start_run(run_name=f"forest-{seed}") as run:
            model = RandomForestClassifier(n_estimators=60, max_depth=6, random_state=seed).fit(X_train, y_train)
            mlflow_explain.explain(model, X_val, y_val, config={"shap": {"max_rows": 200}})
        run_ids.append(run.info.run_id)
    return run_ids[-1]


def diabetes_regressor() -> str:
    """A gradient-boosting regressor on diabetes: the figures of a regression."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0)
    use_experiment("gallery diabetes")
    with mlflow.start_run(run_name="gradient-boosting") as run:
        model = GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0).fit(X_train, y_train)
        mlflow_explain.explain(model, X_val, y_val)
    return run.info.run_id


def wine_classifier() -> str:
    """A logistic regression on wine, three named classes: the per-class SHAP figures."""
    wine = load_wine(as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(
        wine.data, wine.target, test_size=0.4, random_state=0, stratify=wine.target
    )
    use_experiment("gallery wine")
    with mlflow.start_run(run_name="logistic-regression") as run:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)
        mlflow_explain.explain(model, X_val, y_val, class_names=list(wine.target_names))
    return run.info.run_id


def review_texts(n_texts: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Generated reviews: filler words and one deciding word, positive or negative."""
    rng = np.random.default_rng(seed)
    filler = "the film plot actors music story scene camera ending script light long".split()
    positive, negative = "great wonderful moving superb".split(), "dull boring awful weak".split()
    labels = rng.integers(0, 2, n_texts)
    texts = [
        " ".join([*rng.choice(filler, 6), rng.choice(positive if label else negative), *rng.choice(filler, 4)])
        for label in labels
    ]
    return texts, np.where(labels == 1, "pos", "neg")


def text_pipeline() -> str:
    """A TF-IDF + logistic regression pipeline on generated reviews: token attributions."""
    texts, labels = review_texts(400, seed=0)
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(texts[:300], labels[:300])
    use_experiment("gallery text")
    with mlflow.start_run(run_name="tfidf-logistic") as run:
        mlflow_explain.explain(model, pd.Series(texts[300:], name="review"), labels[300:])
    return run.info.run_id


def digits_cnn(epochs: int) -> str:
    """A small CNN on the 8 x 8 digits: Grad-CAM and Integrated Gradients."""
    import torch
    from digits_cnn import DigitsCNN, train

    torch.manual_seed(0)
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None]
    X_train, X_val, y_train, y_val = train_test_split(X, digits.target, test_size=0.3, random_state=0)
    model = DigitsCNN()
    train(model, X_train, y_train.astype(np.int64), epochs)
    use_experiment("gallery digits")
    with mlflow.start_run(run_name="digits-cnn") as run:
        mlflow_explain.explain_images(
            model,
            X_val,
            y_val,
            class_names=[str(digit) for digit in range(10)],
            config={"gradcam": {"methods": ["gradcam", "integrated_gradients"]}},
        )
    return run.info.run_id


def comparison() -> str:
    """mlflow_explain.compare over the gallery's two breast-cancer forests."""
    result = mlflow_explain.compare(experiment_names=["gallery breast cancer"])
    return result.run_id


def copy_figures(case: Case, run_id: str) -> None:
    """Download the run's artifact folder into docs/gallery/<case folder>/, keeping its figures and reports."""
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=case.artifact_path, dst_path=scratch)
        )
        for path in local.rglob("*"):
            if path.suffix in FIGURE_SUFFIXES and "history" not in path.parts:
                target = GALLERY / case.folder / path.relative_to(local)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)


def reading_order(path: Path) -> tuple[int, str]:
    """Where a figure comes in its case: by FIGURE_ORDER, then by name."""
    name = path.as_posix()
    rank = next((i for i, prefix in enumerate(FIGURE_ORDER) if name.startswith(prefix)), len(FIGURE_ORDER))
    return rank, name


def gallery_page() -> str:
    """The Markdown of docs/gallery/index.md, from the files in docs/gallery/: figures embedded, pages linked."""
    lines = [
        "# Gallery",
        "",
        "Every figure and report below was made by `python docs/gallery.py` from real runs:",
        "small models trained on scikit-learn's bundled data, explained into an MLflow store,",
        "and the files copied from the runs' artifact folders. Click a figure to open it alone.",
        "",
    ]
    for case in CASES:
        folder = GALLERY / case.folder
        files = sorted((path.relative_to(folder) for path in folder.rglob("*") if path.is_file()), key=reading_order)
        if not files:
            continue
        lines += [f"## {case.title}", "", case.about, ""]
        lines += [
            f"- Open {PAGES.get(path.name, path.name)}: [`{path}`]({case.folder}/{path})"
            for path in files
            if path.suffix == ".html"
        ]
        for path in files:
            if path.suffix != ".html":
                link = f"{case.folder}/{path.as_posix()}"
                lines += ["", f"### `{path.as_posix()}`", "", f"[![{path.name}]({link})]({link})"]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="training epochs of the digits CNN")
    parser.add_argument("--no-images", action="store_true", help="leave out the image case (no torch needed)")
    parser.add_argument("--page-only", action="store_true", help="only write index.md from the files already there")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)

    if not args.page_only:
        shutil.rmtree(GALLERY, ignore_errors=True)
        with tempfile.TemporaryDirectory() as store:
            mlflow.set_tracking_uri(f"sqlite:///{Path(store) / 'mlflow.db'}")
            copy_figures(TABULAR_CLASSIFIER, breast_cancer_forests())
            copy_figures(COMPARISON, comparison())
            copy_figures(TABULAR_REGRESSOR, diabetes_regressor())
            copy_figures(MULTICLASS, wine_classifier())
            copy_figures(TEXT, text_pipeline())
            if not args.no_images:
                copy_figures(IMAGES, digits_cnn(args.epochs))
    GALLERY.mkdir(exist_ok=True)
    (GALLERY / "index.md").write_text(gallery_page(), encoding="utf-8")
    logger.info("wrote %s", GALLERY / "index.md")


if __name__ == "__main__":
    main()
