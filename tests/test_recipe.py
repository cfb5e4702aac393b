"""airbench94's recipe as options of the one loop (issue 20): classification task_options
(benchmark/tasks/classification_options.py), decoupled SGD and per-group lr, the triangular
schedule, lookahead, whitening-bias freezing, reflect padding, alternating flip, TTA, the
fixed test subset and the data-init hook. Exact answers on tiny inputs; each is checked
against the standalone recipe (perf/airbench_bare.py) where that script has the piece."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_suite_dict
from test_airbench import _bare

from benchmark.data.tensors import apply_augment, reflect_index
from benchmark.errors import SuiteError, UserError
from benchmark.models.airbench import airbench94
from benchmark.suite import derive_seeds, validate_dict
from benchmark.tasks.classification import Classification, logits_tta
from benchmark.train.loop import Lookahead, Loop, build_optimizer, decoupled_sgd, lr_factor

RECIPE = {
    "recipe": {"decoupled": True, "lr_scale": {"norm_bias": 64.0},
               "schedule": {"start": 0.2, "peak": 0.23, "end": 0.07},
               "lookahead": {"start_epoch": 1, "every_steps": 2},
               "freeze_after": {"whiten.bias": 1}, "data_init": {"images": 200}},
    "augment": {"pad_mode": "reflect", "flip": "alternating"},
    "eval": {"tta_test": 2, "test_subset": 60},
}


def _suite(task_options=None, **over):
    d = tiny_suite_dict(**over)
    d["student"] = {"name": "airbench94", "kwargs": {"widths": [8, 8, 8]}}
    d["train"].pop("schedule")
    d["train"].update(augment={"crop_padding": 2, "hflip": True},
                      optimizer={"name": "sgd", "lr": 11.5, "momentum": 0.85, "weight_decay": 0.0153},
                      eval={"every_steps": 5, "batch_size": 200})
    if task_options is not None:
        d["task_options"] = task_options
    return d


def _task(task_options=RECIPE, seed=0):
    s = validate_dict(_suite(task_options), check_paths=False).arm_settings["baseline"]
    return Classification(s, seeds=derive_seeds(seed), device=torch.device("cpu"))


# ------------------------------------------------------------------- validation
@pytest.mark.parametrize("opts, train, path, words", [
    ({"recipe": {"decoupld": True}}, {}, "task_options.recipe.decoupld", "unknown key"),
    ({"recipe": {"decoupled": True}}, {"optimizer": {"name": "adam"}}, "task_options.recipe.decoupled", "sgd"),
    ({"recipe": {"schedule": {}}}, {"schedule": {"name": "cosine", "warmup_epochs": 1}},
     "task_options.recipe.schedule", "remove train.schedule"),
    ({"recipe": {"lookahead": {}}}, {"ema": 0.99}, "task_options.recipe.lookahead", "ema"),
    ({"augment": {"pad_mode": "reflect"}}, {"augment": {"crop_padding": 0}}, "task_options.augment.pad_mode", "crop_padding"),
    ({"augment": {"flip": "alternating"}}, {"augment": {"hflip": False}}, "task_options.augment.flip", "hflip"),
    ({"eval": {"tta_test": 3}}, {}, "task_options.eval.tta_test", ""),
    ({"recipe": {"lr_scale": {"norm_bias": 0}}}, {}, "task_options.recipe", "> 0"),
])
def test_bad_recipe_options_are_validate_errors_with_their_path(opts, train, path, words):
    d = _suite(opts)
    d["train"].update(train)
    with pytest.raises(SuiteError) as e:
        validate_dict(d, check_paths=False)
    msgs = [(p, m) for p, m in e.value.problems if p.startswith(path)]
    assert msgs, e.value.problems
    assert any(words in m for _, m in msgs)


def test_no_task_options_keeps_todays_behaviour_and_run_ids():
    from benchmark.suite import run_spec

    plain = validate_dict(tiny_suite_dict(), check_paths=False)
    assert run_spec(plain, "baseline", 0)["task_options"] == {}
    t = Classification(plain.arm_settings["baseline"], seeds=derive_seeds(0), device=torch.device("cpu"))
    r = t.recipe
    assert not r.decoupled and not r.lr_scale and r.schedule is None and r.lookahead is None
    assert t.base_flip is None and t.test_subset is None


# ------------------------------------------------------------- optimizer and schedule
def test_decoupled_mean_loss_step_equals_the_bare_summed_loss_step():
    bare = _bare()
    torch.manual_seed(0)
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    a, b = airbench94(widths=(8, 8, 8)), airbench94(widths=(8, 8, 8))
    for m in (a, b):
        m.init_from_data(torch.randn(32, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    b.load_state_dict(a.state_dict())
    lr, wd = bare.decoupled_sgd(11.5, 0.0153, 0.85, 16)
    opt_a = torch.optim.SGD(bare.param_groups(a, lr, wd, 64.0), momentum=0.85, nesterov=True)
    cfg = validate_dict(_suite(RECIPE), check_paths=False).arm_settings["baseline"].train.optimizer
    recipe = _task().recipe
    opt_b = build_optimizer(b, cfg, recipe, batch_size=16)
    assert [len(g["params"]) for g in opt_b.param_groups] == [len(g["params"]) for g in reversed(opt_a.param_groups)]
    for _ in range(3):
        for m, opt, red in ((a, opt_a, "sum"), (b, opt_b, "mean")):
            opt.zero_grad()
            F.cross_entropy(m(x), y, label_smoothing=0.2, reduction=red).backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-6)
    lr_b, wd_b = decoupled_sgd(11.5, 0.0153, 0.85, 16)
    assert math.isclose(lr_b, lr * 16) and math.isclose(wd_b, wd)


def test_triangular_lr_factor_matches_the_bare_schedule():
    bare = _bare()
    tri = (0.2, 0.23, 0.07)
    for step in (0, 5, 23, 40, 77, 100):
        assert lr_factor(step, 100, 10, None, tri) == pytest.approx(bare.triangular(step, 100))


def test_lookahead_decay_matches_the_bare_script():
    bare = _bare()
    opt = _task().recipe.lookahead
    for step in (10, 50, 100):
        assert Lookahead.decay_at(step, 100, opt) == pytest.approx(
            bare.lookahead_decay(step, 100, opt.decay, opt.every_steps, opt.power))


# ------------------------------------------------------------------------ data
def test_reflect_padding_equals_torch_reflect_pad_and_is_exact_on_uint8():
    assert reflect_index(4, 2).tolist() == [2, 1, 0, 1, 2, 3, 2, 1]
    x = torch.randint(0, 256, (3, 3, 6, 6), dtype=torch.uint8)
    draws = torch.tensor([[0, 4, 2], [1, 0, 2], [0, 0, 0]])  # x offsets, y offsets, no flip
    out = apply_augment(x, draws, 2, False, "reflect")
    ref = F.pad(x.float(), (2,) * 4, mode="reflect")
    for i in range(3):
        oy, ox = int(draws[1, i]), int(draws[0, i])
        assert torch.equal(out[i].float(), ref[i, :, oy:oy + 6, ox:ox + 6])
    assert torch.equal(out[2], x[2])  # offset (2, 2): no translation


def test_alternating_flip_flips_each_image_exactly_once_over_two_epochs():
    t = _task({"augment": {"flip": "alternating"}}, seed=3)
    t.s = t.s.model_copy(update={"train": t.s.train.model_copy(
        update={"augment": t.s.train.augment.model_copy(update={"crop_padding": 0})})})
    t.normalize = lambda x: x  # batches then yield the uint8 images themselves
    key = {bytes(img.numpy()): (i, False) for i, img in enumerate(t.train.x)}
    key.update({bytes(img.flip(2).numpy()): (i, True) for i, img in enumerate(t.train.x)})
    flips: dict[int, list[bool]] = {}
    for epoch in (0, 1):
        for x, _ in t.batches(epoch, 0):
            for img in x:
                i, flipped = key[bytes(img.contiguous().numpy())]
                flips.setdefault(i, []).append(flipped)
    seen = [v for v in flips.values() if len(v) == 2]  # images in a full batch both epochs
    assert len(seen) > 100
    assert all(a != b for a, b in seen)  # flipped in exactly one of the two epochs
    first = [v[0] for v in seen]
    assert 0.3 < sum(first) / len(first) < 0.7  # epoch 0: a random half


# ------------------------------------------------------------------- evaluation
class Counter(torch.nn.Module):
    """Counts the images it sees; logits favour class 0."""

    def __init__(self):
        super().__init__()
        self.seen = 0

    def forward(self, z):
        self.seen += len(z)
        out = torch.zeros(len(z), 10)
        out[:, 0] = 1
        return out


def test_tta_views_and_the_test_subset_between_evaluations():
    t = _task(RECIPE)
    m = Counter()
    t.eval_final = False
    acc_sub = t.evaluate(m, "test")["accuracy"]
    assert m.seen == 60 * 6  # the fixed 60-image subset, 6 TTA views each
    m.seen = 0
    t.eval_final = True
    acc_full = t.evaluate(m, "test")["accuracy"]
    assert m.seen == 200 * 6  # the last evaluation: the whole test split
    assert acc_sub == pytest.approx(100 * float((t.splits["test"].y[t.test_subset] == 0).float().mean()))
    assert acc_full == pytest.approx(100 * float((t.splits["test"].y == 0).float().mean()))
    m.seen = 0
    t.evaluate(m, "holdout")
    assert m.seen == 100  # tta_holdout 0: one view
    sub_y = t.splits["test"].y[t.test_subset]
    assert torch.bincount(sub_y, minlength=10).max() - torch.bincount(sub_y, minlength=10).min() <= 1
    assert torch.equal(t.test_subset, _task(RECIPE, seed=5).test_subset)  # same for every seed


def test_logits_tta_matches_the_bare_script():
    bare = _bare()
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    x = torch.randn(5, 3, 8, 8)
    for level in (0, 1, 2):
        torch.testing.assert_close(logits_tta(net, x, level), bare.logits_tta(net, x, level))


# -------------------------------------------------------------------- data init
def test_data_init_whitens_the_model_from_the_init_seeds_images():
    t = _task(RECIPE)
    cfg = t.s.student
    a, b, c = t.build_model(cfg, 7), t.build_model(cfg, 7), t.build_model(cfg, 8)
    x = t.normalize(t.splits["test"].x[:4])
    a(x)  # whitened: forward no longer refuses
    assert torch.equal(a.whiten.weight, b.whiten.weight)  # same init seed, same images
    assert not torch.equal(a.whiten.weight, c.whiten.weight)
    with pytest.raises(UserError, match="no init_from_data hook"):
        t.build_model(cfg.model_copy(update={"name": "resnet8", "kwargs": {"width": 8}}), 0)


# ------------------------------------------------------------------------ loop
def _loop(tmp_path, opts, name="run"):
    t = _task(opts)
    model = t.build_model(t.s.student, 0)
    (tmp_path / name).mkdir(exist_ok=True)
    return Loop(task=t, model=model, train_cfg=t.s.train, run_dir=tmp_path / name, device=torch.device("cpu"))


def test_freeze_after_trains_the_whitening_bias_only_for_its_epochs(tmp_path):
    opts = {"recipe": {"data_init": {"images": 100}, "freeze_after": {"whiten.bias": 1}}}
    loop = _loop(tmp_path, opts)
    biases = {}
    loop.on_eval = lambda lp, rows: biases.__setitem__(lp.clock.step, lp.model.whiten.bias.detach().clone())
    loop.run()
    spe, steps = loop.spe, sorted(biases)
    assert not torch.equal(biases[0], biases[spe])  # epoch 0 trains it
    late = [s for s in steps if s >= spe]
    assert all(torch.equal(biases[late[0]], biases[s]) for s in late)  # then frozen
    with pytest.raises(UserError, match="no parameter 'whiten.bais'"):
        _loop(tmp_path, {"recipe": {"data_init": {"images": 100}, "freeze_after": {"whiten.bais": 1}}}, "bad")


def test_lookahead_resume_equals_a_straight_run(tmp_path):
    straight = _loop(tmp_path, RECIPE, "a")
    straight.run()
    first = _loop(tmp_path, RECIPE, "b")
    first.stop_step = first.spe + 2  # stop mid-epoch, after lookahead started (epoch 1)
    first.evals = [s for s in first.evals if s <= first.stop_step] + [first.stop_step]
    first.run()
    assert first.lookahead is not None
    first.save()
    resumed = _loop(tmp_path, RECIPE, "b")
    resumed.load(first.ckpt_path)
    assert resumed.lookahead is not None
    resumed.run()
    for k, v in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=0)


def test_gate_suites_validate_and_the_tax_script_mirrors_the_gate_recipe():
    """perf/airbench_tax.py times the gate suite's own recipe (gate 2 compares like with like)."""
    import importlib.util

    import yaml
    from conftest import ROOT

    gate = yaml.safe_load((ROOT / "suites" / "cifar10-airbench-gate.yaml").read_text())
    spec = importlib.util.spec_from_file_location("airbench_tax", ROOT / "perf" / "airbench_tax.py")
    tax = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tax)
    d = tax.harness_suite(6144, 4, 2)
    for raw in (gate, d):
        validate_dict(raw, check_paths=False)
    assert d["task_options"]["recipe"] == gate["task_options"]["recipe"]
    assert d["task_options"]["augment"] == gate["task_options"]["augment"]
    assert d["train"]["optimizer"] == gate["train"]["optimizer"] and d["train"]["batch_size"] == 1024


def test_lookahead_makes_the_weights_the_slow_copy_only_after_the_last_step(tmp_path):
    """As published: between lookahead updates (also at an epoch's end) the weights run ahead of
    the slow copy; after the last step they are the slow copy. (Until commit 995816c the loop
    also reset them at every epoch's end, throwing away the steps since the last update.)"""
    opts = {**RECIPE, "recipe": {**RECIPE["recipe"], "lookahead": {"start_epoch": 0, "every_steps": 3}}}
    loop = _loop(tmp_path, opts, "la")
    every, spe, total = 3, loop.spe, loop.total
    ends = [k * spe for k in range(1, total // spe + 1) if (k * spe) % every and k * spe < total]
    assert ends, (spe, total)  # the tiny suite has an epoch end between two updates
    loop.evals = sorted(set(loop.evals) | set(ends))
    gap = {}

    def record(lp, rows):
        if lp.lookahead is not None:
            sd = lp.model.state_dict()
            gap[lp.clock.step] = max(float((sd[k] - v).abs().max()) for k, v in lp.lookahead.slow.items()
                                     if v.dtype.is_floating_point)

    loop.on_eval = record
    loop.run()
    assert all(gap[e] > 0 for e in ends)  # an epoch's end: the weights are ahead of the slow copy
    assert gap[total] == 0  # the last step: they are the slow copy
