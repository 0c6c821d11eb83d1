"""The vectorised ensemble trains each member exactly as ``training.fit`` trains it alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from unlearnbench.data import load_data
from unlearnbench.ensemble import Ensemble, init_ensemble, predict_ensemble, train_ensemble
from unlearnbench.methods.base import negated_cross_entropy
from unlearnbench.models import build_model
from unlearnbench.training import FitOptions, Recipe, fit, predict

from .conftest import CONF_DIR

MODELS = {"mlp": {"_target_": "unlearnbench.models.MLP", "name": "mlp", "hidden": [32, 16]},
          "cnn": {"_target_": "unlearnbench.models.SmallCNN", "name": "cnn", "channels": [4, 8]}}
SEEDS = [3, 11, 42]
TOL = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def digits():
    return load_data(OmegaConf.load(CONF_DIR / "dataset/digits.yaml"), "data")


def _builder(name: str, data):
    cfg = OmegaConf.create(MODELS[name])
    return lambda: build_model(cfg, data.input_shape, data.num_classes)


def _alone(build, data, recipe, seed, *, init=None, indices=None, labels=None,
           objective=F.cross_entropy):
    torch.manual_seed(seed)
    model = build()
    if init is not None:
        model.load_state_dict(init)
    fit(model, data.train_x, data.train_y if labels is None else labels, recipe, seed=seed,
        indices=indices, options=FitOptions(objective=objective, progress=False))
    return model


def _assert_member_equals(ensemble: Ensemble, k: int, model: torch.nn.Module) -> None:
    state = model.state_dict()
    for name, tensor in ensemble.member_state(k).items():
        torch.testing.assert_close(tensor, state[name], **TOL, msg=f"member {k}: {name}")
    first = next(iter(ensemble.params))  # members really differ (own seed, own subset)
    assert not torch.allclose(ensemble.params[first][k], ensemble.params[first][k - 1])


@pytest.mark.parametrize(("arch", "kernels"), [("mlp", "auto"), ("cnn", "auto"),
                                               ("mlp", "vmap"), ("cnn", "vmap")])
def test_each_member_equals_fit_alone(digits, arch: str, kernels: str) -> None:
    """The stacked kernels (auto) and the vmap fallback both train each member as fit does."""
    build = _builder(arch, digits)
    recipe = Recipe(epochs=2, batch_size=50, lr=0.05)   # 8 steps per epoch, a ragged last batch
    g = torch.Generator().manual_seed(0)
    subsets = [torch.randperm(len(digits.train_y), generator=g)[:380] for _ in SEEDS]
    ensemble, seconds = train_ensemble(build, digits.train_x, digits.train_y, recipe, SEEDS,
                                       indices_per_member=subsets, kernels=kernels)
    assert seconds > 0
    logits = predict_ensemble(build, ensemble, digits.test_x, kernels=kernels)
    assert logits.shape == (len(SEEDS), len(digits.test_y), 10)
    for k, seed in enumerate(SEEDS):
        alone = _alone(build, digits, recipe, seed, indices=subsets[k])
        _assert_member_equals(ensemble, k, alone)
        torch.testing.assert_close(logits[k], predict(alone, digits.test_x), **TOL)
    # BatchNorm keeps running statistics per member, and eval uses them
    if arch == "cnn":
        assert any("running_var" in name for name in ensemble.buffers)


def test_unlearning_from_trained_members_with_own_labels_and_objective(digits) -> None:
    """init (N trained originals), per-member labels and gradient ascent, as FT/GA/RL need."""
    build = _builder("mlp", digits)
    first = Recipe(epochs=1, batch_size=64, lr=0.05)
    originals, _ = train_ensemble(build, digits.train_x, digits.train_y, first, SEEDS)
    labels = torch.stack([(digits.train_y + 1 + k) % 10 for k in range(len(SEEDS))])
    forget = torch.arange(0, 200)
    then = Recipe(epochs=2, batch_size=32, lr=0.01, scheduler="constant")
    unlearned, _ = train_ensemble(build, digits.train_x, digits.train_y, then, SEEDS,
                                  indices_per_member=[forget] * len(SEEDS),
                                  labels_per_member=labels, objective=negated_cross_entropy,
                                  init_states=originals)
    for k, seed in enumerate(SEEDS):
        alone = _alone(build, digits, then, seed, init=originals.member_state(k),
                       indices=forget, labels=labels[k], objective=negated_cross_entropy)
        _assert_member_equals(unlearned, k, alone)


def test_a_model_without_stacked_kernels_goes_through_vmap(digits) -> None:
    """ResNet18 offers no forward_stacked: members_forward falls back to vmap, still exact."""
    cfg = OmegaConf.create({"_target_": "unlearnbench.models.ResNet18", "name": "resnet18",
                            "width": 2})
    build = lambda: build_model(cfg, digits.input_shape, digits.num_classes)  # noqa: E731
    assert not hasattr(build(), "forward_stacked")
    recipe = Recipe(epochs=1, batch_size=64, lr=0.05)
    rows = [torch.arange(128)] * 2
    ensemble, _ = train_ensemble(build, digits.train_x, digits.train_y, recipe, SEEDS[:2],
                                 indices_per_member=rows)
    alone = _alone(build, digits, recipe, SEEDS[1], indices=rows[1])
    _assert_member_equals(ensemble, 1, alone)


def test_initialisation_and_round_trip(digits) -> None:
    build = _builder("cnn", digits)
    ensemble = init_ensemble(build, SEEDS)
    torch.manual_seed(SEEDS[1])
    alone = build().state_dict()
    assert all(torch.equal(t, alone[name]) for name, t in ensemble.member_state(1).items())
    again = Ensemble.from_state_dict(build, ensemble.state_dict())
    assert again.params.keys() == ensemble.params.keys()
    assert again.buffers.keys() == ensemble.buffers.keys()
    modules = again.modules(build)
    torch.testing.assert_close(predict(modules[2], digits.test_x[:20]),
                               predict_ensemble(build, ensemble, digits.test_x[:20])[2])


def test_bad_input_is_refused(digits) -> None:
    build = _builder("mlp", digits)
    recipe = Recipe(epochs=1, batch_size=64, lr=0.05)
    with pytest.raises(ValueError, match="one common length"):
        train_ensemble(build, digits.train_x, digits.train_y, recipe, [0, 1],
                       indices_per_member=[torch.arange(10), torch.arange(12)])
    with pytest.raises(ValueError, match="augment"):
        train_ensemble(build, digits.train_x, digits.train_y,
                       Recipe(epochs=1, batch_size=64, lr=0.05, augment=True), [0, 1])
