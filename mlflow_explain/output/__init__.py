"""Output: an Explanation or a Comparison as files (SVG figures, the HTML report, tables, summary.json).

Figures are SVG written as text (``svg``, laid out from the label widths ``text`` measures;
``plots`` and ``image_plots`` draw the results); the report is rendered from the Jinja2 templates in
``templates/`` (one section template per method under ``templates/methods/``); ``ranking`` writes each
method's ranking as a table in MLflow's logged-table layout (for the UI); ``artifacts`` writes the folder
that lands under ``explain/`` in the run.

Layer: output. May import the shared vocabulary only; never MLflow, methods, engines, publish or a
trigger. See docs/architecture.md.
"""
