"""Publishing: the one flow every engine's explanation goes through, and the only code that talks to MLflow.

``flow.explain_with`` runs an engine, then drift against the baseline run, the artifacts, the
summary, and logs them (``tracking``) or spools them when MLflow is unreachable (``spool``).

Layer: publish. May import the shared vocabulary, methods, engines and output; never serving,
Spark or a trigger. See docs/architecture.md.
"""
