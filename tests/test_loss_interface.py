"""Every task reaches its distillation loss through the LOSSES registry: a loss registered
here, in the test, is the one each task calls (detection used to send any loss that is not
`pkd` to the logit-KD branch; diffusion hard-coded eps matching; classification special-cased
tfkd), with the outputs the interface promises, the teacher run only for a loss that needs
it, and the term weighted by `combine`."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_suite_dict
from test_loss_golden import detection_suite, diffusion_suite, runtime_of

from benchmark.registry import LOSSES

CALLS: list = []  # the Outputs each spy loss received, in order


class _Spy:
    """A test-local loss: records what it receives, returns scale * a term of the student's
    outputs (so its gradient reaches the student)."""

    extra_outputs: frozenset[str] = frozenset()

    def __init__(self, *, scale: float = 1.0):
        self.scale = scale

    @classmethod
    def from_config(cls, distill, options):
        return cls(**options)

    def __call__(self, out):
        CALLS.append(out)
        return self.scale * self.term(out.student)


class SpyDetection(_Spy):
    @staticmethod
    def term(student):
        return sum(f.float().pow(2).mean() for f in student.features)


class SpyDetectionLogits(SpyDetection):
    extra_outputs = frozenset({"logits"})


class SpyTensor(_Spy):
    @staticmethod
    def term(student):
        return student.float().pow(2).mean()


class Boom(torch.nn.Module):
    """A teacher that must not run."""

    def forward(self, *a, **k):
        raise AssertionError("the teacher ran for a loss that does not need it")

    train_forward = forward


@pytest.fixture
def register():
    """register(name, class name, task, needs_teacher): a LOSSES entry for this test only."""
    names = []

    def add(name: str, target: str, task: str, needs_teacher: bool) -> None:
        LOSSES.add(name, f"test_loss_interface:{target}", "test-local spy loss", task=task,
                   needs_teacher=needs_teacher, reads_beta=True)
        names.append(name)

    CALLS.clear()
    yield add
    for name in names:
        LOSSES.remove(name)
    CALLS.clear()


@pytest.fixture(autouse=True)
def _one_thread(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE", str(tmp_path))
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_a_new_detection_loss_is_called_not_the_logit_kd_branch(register, monkeypatch):
    register("spy_det", "SpyDetection", "detection", needs_teacher=True)
    suite = detection_suite({"teacher": "weak", "loss": "spy_det", "beta": 2.0, "kwargs": {"scale": 3.0}})
    task, student, teacher, batch = runtime_of(suite, monkeypatch)
    loss, parts = task.loss(student, batch, teacher, 0.5, 0)  # the old code ran logit KD here
    assert len(CALLS) == 1, "the detection task did not call the registered loss"
    from benchmark.distill.detection import DetectorOutputs

    out = CALLS[0]
    assert isinstance(out.student, DetectorOutputs) and isinstance(out.teacher, DetectorOutputs)
    assert out.student.logits is None and out.teacher.logits is None  # not asked for
    assert len(out.teacher.features) == len(out.student.features) and out.targets is batch[1]
    kd = 3.0 * SpyDetection.term(out.student)
    assert torch.equal(parts["kd"], kd.detach())
    assert torch.equal(loss, parts["det"] + 0.5 * 2.0 * kd)  # the beta form of combine
    loss.backward()
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    # at weight 0 the loss is not called and no teacher is needed
    task.loss(student, batch, None, 0.0, 0)
    assert len(CALLS) == 1


def test_a_detection_loss_gets_the_logits_it_asks_for_and_no_teacher_it_does_not_need(register, monkeypatch):
    register("spy_det_logits", "SpyDetectionLogits", "detection", needs_teacher=True)
    register("spy_det_free", "SpyDetection", "detection", needs_teacher=False)
    task, student, teacher, batch = runtime_of(
        detection_suite({"teacher": "weak", "loss": "spy_det_logits", "alpha": 0.4}), monkeypatch)
    loss, parts = task.loss(student, batch, teacher, 1.0, 0)
    out = CALLS[-1]
    assert out.student.logits is not None and out.student.logits.shape == out.teacher.logits.shape
    assert torch.equal(loss, (1 - 0.4) * parts["det"] + 0.4 * SpyDetectionLogits.term(out.student))

    task, student, _, batch = runtime_of(detection_suite({"teacher": None, "loss": "spy_det_free",
                                                          "alpha": 0.4, "switch": "never"}), monkeypatch)
    task.loss(student, batch, Boom(), 1.0, 0)  # handed a teacher: still not run
    assert CALLS[-1].teacher is None and len(CALLS) == 2


def test_a_new_diffusion_loss_replaces_eps_matching(register, monkeypatch):
    register("spy_eps", "SpyTensor", "diffusion", needs_teacher=True)
    task, student, teacher, batch = runtime_of(diffusion_suite({"teacher": "weak", "loss": "spy_eps", "beta": 0.7}),
                                               monkeypatch)
    loss, parts = task.loss(student, batch, teacher, 1.0, 0)
    assert len(CALLS) == 1, "the diffusion task did not call the registered loss"
    out = CALLS[0]
    x0, t, noise = batch
    assert out.student.shape == out.teacher.shape == x0.shape and out.targets is noise
    kd = SpyTensor.term(out.student)
    assert torch.equal(parts["kd"], kd.detach())
    assert torch.equal(loss, parts["mse"] + 1.0 * 0.7 * kd)


def test_a_teacher_free_classification_loss_is_not_special_cased(register, monkeypatch):
    register("spy_free", "SpyTensor", "classification", needs_teacher=False)
    suite = tiny_suite_dict(distill={"teacher": None, "loss": "spy_free", "alpha": 0.3, "switch": "never"},
                            arms={"baseline": {"distill": None}, "w2s": {}})
    task, student, teacher, batch = runtime_of(suite, monkeypatch)
    assert teacher is None
    loss, parts = task.loss(student, batch, Boom(), 0.5, 0)
    out = CALLS[-1]
    assert out.teacher is None and torch.equal(out.targets, batch[1])
    a = 0.3 * 0.5
    assert torch.equal(loss, (1 - a) * parts["ce"] + a * SpyTensor.term(out.student))
