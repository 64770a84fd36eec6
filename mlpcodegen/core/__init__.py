"""The core: the IR, the expression graph and its evaluators, passes, fixed-point planning and
simplification.  It knows no framework and no language (see mlpcodegen/_layers.py)."""
