"""JSONSchemaBench harness: MaskBench (no model), generation with a model, validation, reports.

Engines (ours and the peers) sit behind one small adapter interface (``jsonschemabench.engines``);
every (engine, schema) pair runs in an isolated worker process with time and memory limits.

CLI: ``python -m jsonschemabench {maskbench,generate,validate,report,list}`` (also ``constrain bench``).
"""

__version__ = "0.1.0"


def main(argv=None):
    """CLI entry point (``constrain bench ...`` forwards here)."""
    from .cli import main as _main

    return _main(argv)
