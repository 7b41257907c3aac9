"""autolog(): explain every model right after it is fitted.

``autolog`` switches it on and off and explains after scikit-learn-style ``fit``; ``patch``
installs the wrappers, ``rules`` decides which fits count, ``rows`` which validation rows go with
which run, ``lightning`` hooks Lightning's ``Trainer.fit``, ``keras`` Keras 3's ``Model.fit``,
``boosters`` ``xgboost.train``, ``lightgbm.train`` and CatBoost's ``fit``. Nothing heavy at import.

Layer: triggers. See docs/architecture.md.
"""
