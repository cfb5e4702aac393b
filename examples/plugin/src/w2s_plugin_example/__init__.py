"""An example w2s-bench plugin: a loss (`logit_mse`) and a switch rule (`plateau`).

w2s-bench finds this function through the entry point in pyproject.toml and calls it with its
registries before it looks up any name. Keep this module torch-free: targets and options
models are named by import string, so `w2s-bench validate` and `w2s-bench ls` import neither
the loss (which imports torch) nor anything else heavy.
"""

from __future__ import annotations


def register(registries) -> None:
    registries.losses.add(
        "logit_mse",
        "w2s_plugin_example.loss:LogitMSE",
        "scale*mean((z_s - z_t)^2), logit matching (Ba & Caruana 2014), mixed as (1-a)*CE + a*term",
        task="classification",
        needs_teacher=True,
        options="w2s_plugin_example.options:LogitMSEOptions",
    )
    registries.switches.add(
        "plateau",
        "w2s_plugin_example.switch:Plateau",
        "off after `patience` evaluations without the student's held-out metric improving on its best by more than `min_delta`",
        uses_holdout=True,
        options="w2s_plugin_example.options:PlateauOptions",
    )
