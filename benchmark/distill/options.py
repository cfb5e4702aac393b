"""Options of the built-in distillation losses, as the pydantic models the registry names
(meta `options`): the suite's `distill.kwargs` for a loss is validated against its model,
torch-free, before anything runs. The losses themselves (distill/losses.py) import torch;
this module must not."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NoOptions(BaseModel):
    """A loss that reads nothing from `distill.kwargs`: any key there is a mistake."""

    model_config = ConfigDict(extra="forbid")


class TfkdRegOptions(NoOptions):
    """Tf-KD_reg (Yuan et al., CVPR 2020); defaults = the authors' released code."""

    correct_prob: float = Field(0.99, gt=0, lt=1, description="probability of the true class in p_d")
    multiplier: float = Field(100.0, gt=0, description="factor on the KL term (no T^2)")
