"""The options of the plugin's components, as pydantic models (torch-free): w2s-bench validates
the suite's `distill.kwargs` (the loss) and `distill.switch: {plateau: ...}` against them, so a
typo is a `validate` error with its YAML path. extra="forbid" makes unknown keys errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LogitMSEOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scale: float = Field(1.0, gt=0, description="factor on the mean squared logit difference")
    center: bool = Field(True, description="subtract each sample's mean logit first (softmax ignores it)")


class PlateauOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patience: int = Field(3, ge=1, description="evaluations in a row without improvement")
    min_delta: float = Field(0.0, ge=0, description="an improvement is more than this, in the metric's unit")
