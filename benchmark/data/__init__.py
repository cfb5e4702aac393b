"""Datasets. Small ones are decoded once into uint8 tensors (see cache.py) and augmented
as tensors; large ImageFolder trees stream through a DataLoader."""
