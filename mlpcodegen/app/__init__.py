"""The application: the command line, the demo and the plot; it wires the layers below
(see mlpcodegen/_layers.py)."""
