"""Search hooks: genotype.log, cell plots and alpha curves at every checkpoint period."""

import hashlib
import logging
import os
from typing import Optional

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm

from fad.genotypes import check_rank, primitives, save_genotype_file
from fad.nas.search_cells import arch_parameters
from fad.nas.visualize import plot_genotype

__all__ = ["GenotypeWriter", "alpha_checksum"]

logger = logging.getLogger(__name__)

# Plot labels of each tower's cell inputs (docs/METHOD.md section 6).
_TOWER_INPUTS = {"box": ("feature", "feature"), "cls": ("bbox_feature", "feature")}


def alpha_checksum(alphas) -> str:
    """SHA-1 of the alphas' bytes: equal on every rank exactly when the alphas are identical."""
    data = torch.cat([a.detach().reshape(-1).cpu().double() for a in alphas])
    return hashlib.sha1(data.numpy().tobytes()).hexdigest()


class GenotypeWriter(HookBase):
    """Every ``period`` iterations and after the last one: check that all ranks hold the same
    alphas, then, on the main process, write ``genotype.log`` (box tower line first), plot each
    tower's cell (``cell_box.{dot,png}``, ``cell_cls.{dot,png}``), log the genotypes, and put the
    softmaxed alphas into the EventStorage (a heatmap image per tower, per-op mean weights as
    scalars) for TensorBoard.

    Args:
        output_dir: where the files go.
        period: iterations between writes (the checkpoint period).
        rank: genotype derivation, ``"softmax"`` or ``"raw"``.
    """

    def __init__(self, *, output_dir: str, period: int, rank: str = "softmax"):
        check_rank(rank)  # now, not at the first write, hours into a search
        self.output_dir = output_dir
        self.period = period
        self.rank = rank

    def after_step(self):
        done = self.trainer.iter + 1
        if self.period > 0 and done % self.period == 0 and done < self.trainer.max_iter:
            self.write(done)

    def after_train(self):
        # Only a finished search writes its final genotypes (the trainer's loop leaves ``iter``
        # at max_iter only then): a run stopped by an error, even in its last iteration, keeps
        # the ones of its last period.
        if self.trainer.iter >= self.trainer.max_iter:
            self.write(self.trainer.iter)

    def write(self, iteration: int) -> Optional[str]:
        """Write everything for the current alphas; returns the genotype.log path (main only).

        Args:
            iteration: the iterations done, for the logs and the plots' captions.
        """
        model = self.trainer.unwrapped_model
        alphas = arch_parameters(model)
        checksums = comm.all_gather(alpha_checksum(alphas))
        if len(set(checksums)) != 1:
            raise RuntimeError(
                f"architecture weights differ across ranks at iteration {iteration}: "
                f"checksums {checksums}. Alpha gradients must be averaged across ranks."
            )
        if not comm.is_main_process():
            return None
        logger.info(
            f"Architecture weights identical on {len(checksums)} rank(s) at iteration "
            f"{iteration}: checksum {checksums[0]}"
        )
        box, cls = model.genotypes(rank=self.rank)
        path = os.path.abspath(os.path.join(self.output_dir, "genotype.log"))
        save_genotype_file(path, box, cls)
        logger.info(f"Genotypes of iteration {iteration} written to {path}:\n{box}\n{cls}")
        for name, genotype in (("box", box), ("cls", cls)):
            if genotype is None:  # a tower that is not searched
                continue
            try:
                plot_genotype(
                    genotype,
                    os.path.join(self.output_dir, f"cell_{name}"),
                    name=f"{name}_tower",
                    inputs=_TOWER_INPUTS[name],
                    caption=f"{name} tower, iteration {iteration}",
                )
            except RuntimeError as e:  # Graphviz failed: a plot is not worth a search
                logger.warning(f"Could not plot the {name} tower's cell: {e}")
        self._log_alphas(model)
        return path

    def _log_alphas(self, model) -> None:
        storage = self.trainer.storage
        for name, tower in model.search_towers().items():
            weights = torch.cat([a.detach().softmax(-1).cpu() for a in tower.alphas])  # (E, K)
            # One row per edge, one column per op; 8x8 pixels a weight so TensorBoard shows it.
            image = weights.repeat_interleave(8, 0).repeat_interleave(8, 1)[None]
            storage.put_image(f"alphas/{name}_tower", image / image.max())
            ops = primitives(dil3=tower.dil3)
            storage.put_scalars(
                **{f"alpha/{name}/{op}": w for op, w in zip(ops, weights.mean(0).tolist())},
                smoothing_hint=False,
            )
