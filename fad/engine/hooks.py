"""Search hooks: genotype.log, cell plots and alpha curves at every checkpoint period."""

import hashlib
import logging
import os
from typing import Dict, List, Optional, Tuple

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm

from fad.engine.cost import CostTable
from fad.engine.search_trainer import SearchOptions
from fad.genotypes import primitives, save_genotype_file
from fad.nas.search_cells import arch_parameters
from fad.nas.visualize import plot_alpha_history, plot_genotype

__all__ = ["GenotypeWriter", "alpha_checksum"]

logger = logging.getLogger(__name__)

# What each tower's first cell reads as c_{k-2} and c_{k-1} (docs/METHOD.md section 6).
_FIRST_INPUTS = {
    "box": ("FPN feature", "FPN feature"),
    "cls": ("bbox_feature", "FPN feature"),
    "mask": ("RoI feature", "RoI feature"),
}


def alpha_checksum(alphas) -> str:
    """SHA-1 of the alphas' bytes: equal on every rank exactly when the alphas are identical."""
    data = torch.cat([a.detach().reshape(-1).cpu().double() for a in alphas])
    return hashlib.sha1(data.numpy().tobytes()).hexdigest()


Weights = Dict[str, torch.Tensor]  # per tower name, the (edges, candidates) softmax weights


def _shapes(weights: Weights) -> dict:
    return {name: w.shape for name, w in weights.items()}


def _softmax_weights(model) -> Weights:
    return {
        name: torch.cat([a.detach().softmax(-1).cpu() for a in tower.alphas])
        for name, tower in model.search_towers().items()
    }


class GenotypeWriter(HookBase):
    """Every ``period`` iterations and after the last one: check that all ranks hold the same
    alphas, then, on the main process, write ``genotype.log`` (box tower line first), plot each
    tower's cell (``cell_box.{dot,png}``, ``cell_cls.{dot,png}``), plot how the softmax weights
    of every edge moved so far (``alphas.png``), log the genotypes, and put the softmaxed alphas
    into the EventStorage (a heatmap image per tower, per-op mean weights as scalars) for
    TensorBoard.

    The final genotypes are the trainer's (:meth:`fad.engine.SearchTrainer.genotypes`: by the
    alphas, or by perturbation with ``search.selection="perturbation"``); those of the periods
    before are the alphas'.

    The weights are sampled every ``history_period`` iterations, before the iteration runs; the
    samples are part of the hook's state, which the trainer's checkpoints hold, so the plot of a
    resumed search starts at iteration 0.

    Args:
        output_dir: where the files go.
        period: iterations between writes (the checkpoint period).
        options: the search's (``genotype_rank``, ``history_period``; default: the paper's).
        cost_table: of a cost-aware search: also log the towers' expected and derived costs
            (:meth:`fad.engine.cost.CostTable.log`).
    """

    def __init__(
        self,
        *,
        output_dir: str,
        period: int,
        options: Optional[SearchOptions] = None,
        cost_table: Optional[CostTable] = None,
    ):
        options = options or SearchOptions()
        self.output_dir = output_dir
        self.period = period
        self.rank = options.genotype_rank
        self.history_period = options.history_period
        self._history: List[Tuple[int, Weights]] = []
        self.cost_table = cost_table

    def before_step(self):
        # The weights after `iter` iterations: what a checkpoint of the previous one resumes from.
        if self.trainer.iter % self.history_period == 0:
            self._history.append(
                (self.trainer.iter, _softmax_weights(self.trainer.unwrapped_model))
            )

    def after_step(self):
        done = self.trainer.iter + 1
        if self.period > 0 and done % self.period == 0 and done < self.trainer.max_iter:
            self.write(done)

    def after_train(self):
        # Only a finished search writes its final genotypes (the trainer's loop leaves ``iter``
        # at max_iter only then): a run stopped by an error, even in its last iteration, keeps
        # the ones of its last period.
        if self.trainer.iter >= self.trainer.max_iter:
            self.write(self.trainer.iter, final=True)

    def write(self, iteration: int, *, final: bool = False) -> Optional[str]:
        """Write everything for the current alphas; returns the genotype.log path (main only).

        Args:
            iteration: the iterations done, for the logs and the plots' captions.
            final: the search's end: the genotypes of the trainer's selection.
        """
        model = self.trainer.unwrapped_model
        alphas = arch_parameters(model)
        checksums = comm.all_gather(alpha_checksum(alphas))
        if len(set(checksums)) != 1:
            raise RuntimeError(
                f"architecture weights differ across ranks at iteration {iteration}: "
                f"checksums {checksums}. Alpha gradients must be averaged across ranks."
            )
        # Every rank: the perturbation selection averages its losses across ranks.
        genotypes = self.trainer.genotypes() if final else model.genotypes(rank=self.rank)
        if not comm.is_main_process():
            return None
        logger.info(
            f"Architecture weights identical on {len(checksums)} rank(s) at iteration "
            f"{iteration}: checksum {checksums[0]}"
        )
        path = os.path.abspath(os.path.join(self.output_dir, "genotype.log"))
        save_genotype_file(path, genotypes)
        lines = "\n".join(f"{name}: {g}" for name, g in genotypes.items())
        logger.info(f"Genotypes of iteration {iteration} written to {path}:\n{lines}")
        for name, genotype in genotypes.items():
            try:  # a plot is not worth a search: Graphviz or matplotlib failing costs the plot
                if genotype is not None:  # None: a tower that is not searched
                    stem = os.path.join(self.output_dir, f"cell_{name}")
                    caption = f"{name} tower, iteration {iteration}"
                    plot_genotype(
                        genotype,
                        stem,
                        name=f"{name}_tower",
                        first_inputs=_FIRST_INPUTS[name],
                        caption=caption,
                    )
            except RuntimeError as e:
                logger.warning(f"Could not plot the {name} tower's cell: {e}")
        towers, current = model.search_towers(), _softmax_weights(model)
        # Samples of another search space (a resumed history of other towers) are left out.
        history = [(it, w) for it, w in self._history if _shapes(w) == _shapes(current)]
        history.append((iteration, current))
        try:
            plot_alpha_history(
                [it for it, _ in history],
                {name: torch.stack([w[name] for _, w in history]) for name in towers},
                os.path.join(self.output_dir, "alphas.png"),
                genotypes=genotypes,
                dil3=next(iter(towers.values())).dil3,
                title=f"Softmax weights of each edge's candidates up to iteration {iteration}; "
                "framed: the edges of genotype.log\n$c_{k-2}$, $c_{k-1}$: the outputs of the two "
                "cells before (cell 1 reads: "
                + "; ".join(f"{n}, {' and '.join(_FIRST_INPUTS[n])}" for n in towers)
                + ")",
            )
        except (OSError, RuntimeError, ValueError) as e:
            logger.warning(f"Could not plot alphas.png: {e}")
        storage = self.trainer.storage
        for name, tower in towers.items():
            # One row per edge, one column per op; 8x8 pixels a weight so TensorBoard shows it.
            image = current[name].repeat_interleave(8, 0).repeat_interleave(8, 1)[None]
            storage.put_image(f"alphas/{name}_tower", image / image.max())
            means = zip(primitives(dil3=tower.dil3), current[name].mean(0).tolist())
            storage.put_scalars(
                **{f"alpha/{name}/{op}": w for op, w in means}, smoothing_hint=False
            )
        if self.cost_table is not None:
            self.cost_table.log(
                towers=towers, genotypes=genotypes, storage=storage, iteration=iteration
            )
        return path

    def state_dict(self) -> dict:
        if not self._history:
            return {}
        return {
            "iterations": [it for it, _ in self._history],
            "weights": {
                name: torch.stack([w[name] for _, w in self._history])
                for name in self._history[0][1]
            },
        }

    def load_state_dict(self, state_dict: dict) -> None:
        weights = state_dict["weights"]
        self._history = [
            (int(it), {name: w[t] for name, w in weights.items()})
            for t, it in enumerate(state_dict["iterations"])
        ]
