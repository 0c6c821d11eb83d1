"""Inpainting data, the three generators at tiny sizes, their training loop, the unlearning
methods on real models, and the image grid."""

from __future__ import annotations

import copy

import matplotlib.image
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from unlearnbench.errors import ConfigError
from unlearnbench.generative.base import InpaintingModel, inpaint
from unlearnbench.generative.data import (
    cell_mask,
    masked_input,
    region_mask,
    to_square,
    training_masks,
    unit_range,
)
from unlearnbench.generative.ddpm import PaletteDDPM
from unlearnbench.generative.evaluation import evaluate_generator
from unlearnbench.generative.grid import unlearning_grid
from unlearnbench.generative.mae import MAE
from unlearnbench.generative.methods.i2i_encoder import i2i_encoder
from unlearnbench.generative.methods.max_loss import max_loss
from unlearnbench.generative.methods.noisy_label import noisy_label
from unlearnbench.generative.methods.random_encoder import random_encoder
from unlearnbench.generative.methods.retain_label import retain_label
from unlearnbench.generative.metrics import build_judge
from unlearnbench.generative.training import GeneratorRecipe, train_generator
from unlearnbench.generative.unlearning import UnlearnRecipe
from unlearnbench.generative.vqgan import VQTokenModel

TINY = {
    "mae": lambda: MAE(dim=32, depth=1, heads=2, decoder_dim=32, decoder_depth=1),
    "vqgan": lambda: VQTokenModel(codes=32, code_dim=8, width=8, dim=32, depth=1, heads=2,
                                  decoder_dim=32, decoder_depth=1, decode_steps=3),
    "ddpm": lambda: PaletteDDPM(width=8, mults=(1, 2, 2), sample_steps=3),
}


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    bunch = load_digits()
    x = torch.tensor(bunch.images / 16.0, dtype=torch.float32)[:, None]
    return to_square(x), torch.tensor(bunch.target)


def tiny(name: str, seed: int = 0) -> InpaintingModel:
    torch.manual_seed(seed)
    return TINY[name]()


# -- data ----------------------------------------------------------------------------------


def test_images_become_32_by_32() -> None:
    fashion_like = torch.rand(3, 1, 28, 28)
    padded = to_square(fashion_like)
    assert padded.shape == (3, 1, 32, 32) and torch.equal(padded[:, :, 2:30, 2:30], fashion_like)
    assert padded[:, :, :2].abs().sum() == 0
    upsampled = to_square(torch.rand(3, 1, 8, 8))
    assert upsampled.shape == (3, 1, 32, 32) and 0 <= upsampled.min() <= upsampled.max() <= 1


def test_unit_range_undoes_a_normalisation() -> None:
    raw = torch.rand(50, 1, 8, 8)
    raw[0, 0, 0, 0], raw[0, 0, 0, 1] = 0.0, 1.0
    train, test = unit_range((raw - 0.3) / 0.2, (raw[:5] - 0.3) / 0.2)
    assert torch.allclose(train, raw, atol=1e-6) and torch.allclose(test, raw[:5], atol=1e-6)


@pytest.mark.parametrize(("box", "mode", "hole"), [(0.5, "inpaint", 16 * 16),
                                                    (0.25, "inpaint", 8 * 8),
                                                    (0.5, "outpaint", 32 * 32 - 16 * 16)])
def test_region_masks(box: float, mode: str, hole: int) -> None:
    mask = region_mask(box, mode)
    assert mask.shape == (1, 1, 32, 32) and mask.sum() == hole
    assert mask[0, 0, 16, 16] == (1.0 if mode == "inpaint" else 0.0)
    # aligned to the 4x4 patch grid: the cell mask covers exactly the hole
    assert cell_mask(mask).sum() * 16 == hole


def test_bad_task_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="task.mode"):
        region_mask(0.5, "uncrop")
    with pytest.raises(ConfigError, match="task.box"):
        region_mask(1.5, "inpaint")


def test_training_masks_are_on_the_cell_grid_and_never_full() -> None:
    masks = training_masks(500, torch.Generator().manual_seed(0))
    cells = cell_mask(masks)
    assert masks.shape == (500, 1, 32, 32)
    assert torch.equal(masks, cells.float().view(500, 1, 8, 8).repeat_interleave(4, 2)
                       .repeat_interleave(4, 3))
    assert (~cells).any(dim=1).all() and cells.any(dim=1).all()
    assert 0.3 < cells.float().mean() < 0.8


# -- models ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TINY))
def test_model_interface(name: str, digits) -> None:
    x = digits[0][:6]
    model = tiny(name)
    g = torch.Generator().manual_seed(0)
    draw = model.draw(x, g)
    assert model.loss(x, draw).shape == (6,)
    assert model.noisy_label_loss(x, draw, g).shape == (6,)
    assert len(model.outputs(x, draw)) == 6
    feats = model.encode(x, draw)
    assert all(len(f) == 6 for f in feats)
    assert {id(p) for p in model.encoder.parameters()} <= {id(p) for p in model.parameters()}
    assert {id(p) for p in model.encoder.parameters()} <= {id(p) for p in
                                                            model.generator_parameters()}


@pytest.mark.parametrize("name", list(TINY))
def test_inpainting_keeps_the_visible_pixels(name: str, digits) -> None:
    x = digits[0][:5]
    model = tiny(name)
    mask = region_mask(0.5, "inpaint")
    out = inpaint(model, x, mask, seed=1)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    assert torch.equal(out * (1 - mask), x * (1 - mask))
    assert torch.equal(out, inpaint(model, x, mask, seed=1))
    # the model never sees the hole: changing it changes nothing
    assert torch.equal(out, inpaint(model, x + mask * 0.3, mask, seed=1))


@pytest.mark.parametrize("name", list(TINY))
def test_training_lowers_the_loss_and_is_reproducible(name: str, digits) -> None:
    x = digits[0][:128]
    recipe = GeneratorRecipe(epochs=(2,) * len(tiny(name).stages), batch_size=64, lr=3e-3)
    probe = torch.Generator().manual_seed(5)
    model = tiny(name)
    draw = model.draw(x, probe)
    before = model.loss(x, draw).mean().item() if name != "vqgan" else None
    seconds = train_generator(model, x, None, recipe, seed=0)
    again = tiny(name)
    train_generator(again, x, None, recipe, seed=0)
    assert seconds > 0
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 again.state_dict().values(), strict=True))
    if before is not None:  # the VQ model's loss is defined only once its tokenizer is
        assert model.loss(x, draw).mean().item() < before


def test_vq_tokens_of_a_masked_image_match_at_visible_cells(digits) -> None:
    model = tiny("vqgan")
    train_generator(model, digits[0][:256], None, GeneratorRecipe(epochs=(1, 1), batch_size=64),
                    seed=0)
    x = digits[0][:8]
    mask = region_mask(0.5, "inpaint")
    visible = ~cell_mask(mask).expand(8, -1)
    full, masked = model.tokenizer.tokens(x), model.tokenizer.tokens(masked_input(x, mask))
    assert torch.equal(full[visible], masked[visible])
    assert len(model.tokenizer.tokens(digits[0][:256]).unique()) > 8  # the codebook is used


def test_recipe_needs_one_epoch_count_per_stage(digits) -> None:
    with pytest.raises(ConfigError, match="train.epochs"):
        train_generator(tiny("vqgan"), digits[0][:8], None, GeneratorRecipe(epochs=(1,)), seed=0)


def test_diffusion_has_only_its_own_noise() -> None:
    with pytest.raises(ConfigError, match="method.noise"):
        i2i_encoder(tiny("ddpm"), tiny("ddpm"), torch.rand(2, 1, 32, 32),
                    torch.rand(2, 1, 32, 32), alpha=0.1, noise="uniform",
                    recipe=UnlearnRecipe(epochs=1, batch_size=4, lr=1e-3), seed=0)


# -- methods on real models -------------------------------------------------------------------

ENCODER_ONLY = {"i2i_encoder": lambda m, o, f, r, rc: i2i_encoder(
                    m, o, f, r, alpha=0.2, noise="gaussian", recipe=rc, seed=0),
                "random_encoder": lambda m, o, f, r, rc: random_encoder(
                    m, o, f, r, alpha=0.2, mode="fixed", recipe=rc, seed=0)}
FULL_MODEL = {"max_loss": lambda m, o, f, r, rc: max_loss(m, o, f, r, alpha=0.2, recipe=rc,
                                                           seed=0),
              "noisy_label": lambda m, o, f, r, rc: noisy_label(m, o, f, r, alpha=0.2,
                                                                 recipe=rc, seed=0),
              "retain_label": lambda m, o, f, r, rc: retain_label(
                  m, o, f, r, alpha=0.2, mode="reference", recipe=rc, seed=0)}


@pytest.mark.parametrize("name", list(TINY))
@pytest.mark.parametrize("method", [*ENCODER_ONLY, *FULL_MODEL])
def test_methods_update_what_they_should(name: str, method: str, digits) -> None:
    x, y = digits
    original = tiny(name)
    model = copy.deepcopy(original)
    recipe = UnlearnRecipe(epochs=1, batch_size=8, lr=1e-2)
    run = {**ENCODER_ONLY, **FULL_MODEL}[method]
    snapshot = copy.deepcopy(original.state_dict())
    info = run(model, original, x[y == 0][:8], x[y != 0][:8], recipe)
    assert all(torch.equal(v, original.state_dict()[k]) for k, v in snapshot.items())
    assert all(p.requires_grad for p in original.parameters())  # later copies stay trainable
    assert info["steps"] == 2
    encoder = {n for n, p in model.named_parameters()
               if any(p is q for q in model.encoder.parameters())}
    generator = {n for n, p in model.named_parameters()
                 if any(p is q for q in model.generator_parameters())}
    before, after = dict(original.named_parameters()), dict(model.named_parameters())
    changed = {n for n in after if not torch.equal(before[n], after[n])}
    allowed = encoder if method in ENCODER_ONLY else generator
    assert changed and changed <= allowed
    assert not any(n.startswith("tokenizer.") for n in changed)


def test_evaluation_row_and_outputs(digits) -> None:
    x, y = digits
    judge = build_judge(10)
    mask = region_mask(0.25, "outpaint")
    result = evaluate_generator(tiny("mae"), judge, retain=x[y != 0][:20], forget=x[y == 0][:20],
                                mask=mask, forget_classes=[0])
    assert result.retain.shape == (20, 1, 32, 32) and result.forget.shape == (20, 1, 32, 32)
    assert {"retain_FD", "forget_FD", "forget_recognised", "cos_pvalue"} <= set(result.row)
    assert all(np.isfinite(v) for v in result.row.values())


# -- grid ------------------------------------------------------------------------------------


def test_grid_png(tmp_path, digits) -> None:
    x = digits[0]
    mask = region_mask(0.5, "inpaint")
    path = unlearning_grid(tmp_path / "grid.png", mask, x[:2], x[2:5],
                           {"original": (x[:2], x[2:5]), "unlearned": (x[:2], x[2:5])})
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > image.shape[1] / 2  # 5 rows, 4 columns
