"""Evaluation metrics that need more than a forward pass (FID, KID)."""
