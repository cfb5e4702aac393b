"""Model construction: registered CIFAR-style networks, or any timm model (`timm:<name>`)."""

from __future__ import annotations

from ..errors import UserError
from ..registry import MODELS, is_timm_name


def build_model(name: str, num_classes: int, kwargs: dict | None = None):
    kwargs = dict(kwargs or {})
    if is_timm_name(name):
        import timm

        # never pretrained: no network, and the paired arms must start from our own init
        kwargs.setdefault("pretrained", False)
        if kwargs["pretrained"]:
            raise UserError(f"{name}: pretrained weights are not allowed (runs start from scratch)")
        return timm.create_model(name[5:], num_classes=num_classes, **kwargs)
    try:
        fn = MODELS[name].load()
    except KeyError as e:
        raise UserError(str(e)) from None
    try:
        return fn(num_classes=num_classes, **kwargs)
    except TypeError as e:
        raise UserError(f"model {name!r}: bad kwargs {kwargs}: {e}") from None
