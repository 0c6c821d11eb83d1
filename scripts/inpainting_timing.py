"""Train each inpainting generator (MAE, VQ token model, diffusion) on Fashion-MNIST at the
CPU size and report its training time and a sanity check in a judge classifier's space.

    OMP_NUM_THREADS=2 python scripts/inpainting_timing.py [--models mae vqgan ddpm] \
        [--limit N] [--eval 1000] [--grid out.png] [--save DIR]
    OMP_NUM_THREADS=2 python scripts/inpainting_timing.py --probe 40

``--probe N`` trains each model on N batches only (every stage, the recipe's epochs) and
extrapolates to the full training set: every stage's step count scales by the same factor,
so a quiet minute is enough to estimate the full training time.

The sanity check: the Fréchet distance to the ground truth of the masked input (a black box)
and of the model's inpainting, on test images of the retain and the forget classes
(Fashion-MNIST's default forget classes: sandal, sneaker, ankle boot), and the share of
forget inpaintings the judge recognises as a forget class.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from pathlib import Path

import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from unlearnbench.data import load_data
from unlearnbench.generative.base import InpaintingModel
from unlearnbench.generative.data import masked_input, region_mask, to_square, unit_range
from unlearnbench.generative.ddpm import PaletteDDPM
from unlearnbench.generative.evaluation import evaluate_generator
from unlearnbench.generative.grid import save_grid
from unlearnbench.generative.mae import MAE
from unlearnbench.generative.metrics import split_metrics, train_judge
from unlearnbench.generative.training import GeneratorRecipe, train_generator
from unlearnbench.generative.vqgan import VQTokenModel

FORGET = [5, 7, 9]
# The CPU size of each model and its recipe (epochs per stage): each original trains in
# under 10 minutes on 2 CPU cores.
MODELS = {
    "mae": (MAE, GeneratorRecipe(epochs=(2,), batch_size=128, lr=1.5e-3)),
    "vqgan": (VQTokenModel, GeneratorRecipe(epochs=(1, 2), batch_size=128, lr=1.5e-3)),
    "ddpm": (PaletteDDPM, GeneratorRecipe(epochs=(2,), batch_size=128, lr=2e-3)),
}


def fashion_mnist() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    cfg = OmegaConf.create({"name": "fashion_mnist", "download": False,
                            "debian_dir": "/usr/share/datasets/fashion-mnist"})
    data = load_data(cfg, "data")
    train_x, test_x = unit_range(data.train_x, data.test_x)
    return to_square(train_x), data.train_y, to_square(test_x), data.test_y


def probe(train_x: torch.Tensor, names: list[str], batches: int, seed: int) -> None:
    print(f"threads {torch.get_num_threads()}; probing {batches} batches per epoch")
    for name in names:
        cls, recipe = MODELS[name]
        torch.manual_seed(seed)
        subset = train_x[: batches * recipe.batch_size]
        cpu = time.process_time()
        seconds = train_generator(cls(), subset, None, recipe, seed=seed, desc=name)
        cpu = time.process_time() - cpu
        scale = math.ceil(len(train_x) / recipe.batch_size) / batches
        # CPU seconds say what the work needs when other processes share the cores.
        print(f"{name}: {seconds:.1f}s wall, {cpu:.1f}s CPU for {batches} batches x "
              f"{list(recipe.epochs)} epochs; extrapolated to {len(train_x)} images: "
              f"{seconds * scale:.0f}s wall, {cpu * scale:.0f}s CPU", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images")
    parser.add_argument("--eval", type=int, default=1000, help="test images per split")
    parser.add_argument("--box", type=float, default=0.5)
    parser.add_argument("--mode", default="inpaint")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, nargs="+", default=None,
                        help="override the epochs per stage (exploring sizes)")
    parser.add_argument("--grid", type=Path, default=None, help="PNG of a few inpaintings")
    parser.add_argument("--probe", type=int, default=None,
                        help="train on N batches only and extrapolate the time")
    parser.add_argument("--save", type=Path, default=None,
                        help="folder for the judge's and the models' weights (safetensors)")
    args = parser.parse_args()

    train_x, train_y, test_x, test_y = fashion_mnist()
    if args.probe:
        probe(train_x, args.models, args.probe, args.seed)
        return
    if args.limit:
        train_x, train_y = train_x[: args.limit], train_y[: args.limit]
    print(f"threads {torch.get_num_threads()}, {len(train_x)} training images")
    start = time.perf_counter()
    judge = train_judge(train_x, train_y, seed=args.seed)
    print(f"judge: {time.perf_counter() - start:.0f}s")
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        save_file(judge.state_dict(), args.save / "judge.safetensors")

    mask = region_mask(args.box, args.mode)
    is_forget = torch.isin(test_y, torch.tensor(FORGET))
    splits = {"retain": test_x[~is_forget][: args.eval], "forget": test_x[is_forget][: args.eval]}
    for split, truth in splits.items():
        base = split_metrics(judge, masked_input(truth, mask), truth, FORGET)
        print(f"masked input, {split}: FD {base['FD']:.2f}  "
              f"recognised {base['recognised']:.2f}")

    outputs: dict[str, torch.Tensor] = {}
    for name in args.models:
        cls, recipe = MODELS[name]
        if args.epochs:
            recipe = replace(recipe, epochs=tuple(args.epochs[: len(recipe.epochs)]))
        torch.manual_seed(args.seed)
        model: InpaintingModel = cls()
        params = sum(p.numel() for p in model.parameters())
        seconds = train_generator(model, train_x, None, recipe, seed=args.seed, desc=name)
        line = f"{name}: {params / 1e6:.2f}M parameters, trained in {seconds:.0f}s"
        if args.save:
            save_file(model.state_dict(), args.save / f"{name}.safetensors")
        start = time.perf_counter()
        result = evaluate_generator(model, judge, retain=splits["retain"],
                                    forget=splits["forget"], mask=mask, forget_classes=FORGET,
                                    seed=args.seed)
        row = result.row
        line += (f" | inpainting {time.perf_counter() - start:.0f}s"
                 f" | retain: FD {row['retain_FD']:.2f} cos {row['retain_cos']:.3f}"
                 f" | forget: FD {row['forget_FD']:.2f} cos {row['forget_cos']:.3f}"
                 f" recognised {row['forget_recognised']:.2f}")
        outputs[name] = torch.cat([result.retain[:6], result.forget[:6]])
        print(line, flush=True)
    if args.grid:
        truth = torch.cat([splits["retain"][:6], splits["forget"][:6]])
        columns = {"ground truth": truth, "input": masked_input(truth, mask)}
        columns.update(outputs)
        save_grid(args.grid, columns, row_labels=["retain"] * 6 + ["forget"] * 6)


if __name__ == "__main__":
    main()
