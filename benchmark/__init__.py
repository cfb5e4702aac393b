"""w2s-bench: time-to-threshold for weak-to-strong knowledge distillation in vision."""

__version__ = "0.1.0"

# Version of the on-disk results contract (see benchmark/contract.py). Bump it, with a
# note, whenever a file under results/ changes shape.
SCHEMA_VERSION = 1
