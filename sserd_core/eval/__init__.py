"""SSERD evaluation: datasets, the intra-/cross-ID protocols, the runner, paper-style tables, the user study.

Entry points: ``sserd eval`` (:mod:`sserd_core.eval.cli`, ``register(subparsers)``),
:func:`sserd_core.eval.runner.run_items`, :func:`sserd_core.eval.tables.write_reports`,
:func:`sserd_core.eval.study_app.build_app`. See docs/EVALUATION.md.
"""
