"""The options of the streamed ImageFolder datasets (`imagefolder`, `imagenet`): every
`data.kwargs` key they read, with its default, declared and validated here.

Torch-free, so `validate` can check a suite's `data.kwargs` without importing torch. The
options live in `data.kwargs` (not in DataCfg, whose dump is hashed into run ids): a suite
that spells out a default gets a different id from one that leaves it out, exactly as before
this model existed, because the ids hash the kwargs as written.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ImageFolderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="folder under the data root holding train/ and val/ "
                                               "(default: `imagenet` for the imagenet dataset)")
    image_size: int = Field(224, ge=16, le=1024, description="side of the square crops, px")
    workers: int = Field(8, ge=0, le=256, description="DataLoader worker processes per loader")
    prefetch_factor: int = Field(4, ge=1, le=64, description="batches each worker prepares ahead")
    # RandomResizedCrop (Szegedy et al. 2015, "Going deeper with convolutions", sec. 6; the
    # torchvision/timm defaults): a crop of area fraction in `crop_scale` and aspect ratio
    # (w/h) log-uniform in `crop_ratio`, resized to image_size x image_size
    crop_scale: tuple[float, float] = Field((0.08, 1.0), description="crop area fraction (low, high)")
    crop_ratio: tuple[float, float] = Field((3 / 4, 4 / 3), description="crop aspect ratio w/h (low, high)")
    # evaluation: resize the short side to image_size / eval_crop_pct, centre-crop image_size
    # (the ResNet convention 224 / 256 = 0.875, He et al. 2016 / torchvision references)
    eval_crop_pct: float = Field(0.875, gt=0, le=1, description="centre-crop fraction at evaluation")

    @model_validator(mode="after")
    def _ranges(self) -> ImageFolderOptions:
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_scale needs 0 < low <= high <= 1, got {list(self.crop_scale)}")
        lo, hi = self.crop_ratio
        if not 0 < lo <= hi:
            raise ValueError(f"crop_ratio needs 0 < low <= high, got {list(self.crop_ratio)}")
        return self


def problems(kwargs: dict, dataset: str = "imagefolder") -> list[tuple[str, str]]:
    """Every problem with a suite's `data.kwargs` for `dataset`, as (YAML path, message);
    [] when they are valid. Unknown keys name the known ones."""
    if not isinstance(kwargs, dict):
        return [("data.kwargs", "must be a mapping")]
    out = []
    try:
        opts = ImageFolderOptions.model_validate(kwargs)
    except ValidationError as e:
        known = ", ".join(ImageFolderOptions.model_fields)
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            where = f"data.kwargs.{loc}" if loc else "data.kwargs"
            if err["type"] == "extra_forbidden":
                out.append((where, f"dataset {dataset!r} has no option {loc!r} (its options: {known})"))
            else:
                out.append((where, err["msg"].removeprefix("Value error, ")))
        return out
    if dataset == "imagefolder" and not opts.path:
        out.append(("data.kwargs.path", "imagefolder needs data.kwargs.path (a folder under the data root "
                                        "with train/ and val/)"))
    return out


def parse(kwargs: dict, dataset: str = "imagefolder") -> ImageFolderOptions:
    """The validated options, with `path` defaulting to `imagenet` for the imagenet dataset.
    Raises DataError listing every problem."""
    from ..errors import DataError

    probs = problems(kwargs, dataset)
    if probs:
        raise DataError("invalid data.kwargs:\n" + "\n".join(f"  {p}: {m}" for p, m in probs))
    opts = ImageFolderOptions.model_validate(kwargs)
    if dataset == "imagenet" and not opts.path:
        opts = opts.model_copy(update={"path": "imagenet"})
    return opts
