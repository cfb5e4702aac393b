"""Distillation objectives and switch policies. Distillation is a loss term with a weight
schedule (DESIGN.md convention 3), never a trainer subclass."""
