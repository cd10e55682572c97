"""The synthetic COCO-format dataset of fad.data.synthetic (128 x 128 images, 3 shape classes).

search_net.py and train_net.py generate the splits they need before they start, under
$FAD_SYNTHETIC_ROOT (default $DETECTRON2_DATASETS/fad_synthetic): weights learn on
fad_synthetic_train, alphas on fad_synthetic_arch, evaluation runs on fad_synthetic_val.
"""

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import DatasetMapper, build_detection_test_loader, get_detection_dataset_dicts
from detectron2.evaluation import COCOEvaluator
from omegaconf import OmegaConf

import fad.data  # noqa: F401  (registers the synthetic splits)

from .voc_search import search_loader

NUM_CLASSES = 3

dataloader = OmegaConf.create()
# Images without boxes stay in (detectron2 drops them by default): FCOS learns background there.
_size = dict(short_side=128, max_size=128, batch_size=4, filter_empty=False)
dataloader.train = search_loader("fad_synthetic_train", **_size)
dataloader.arch = search_loader("fad_synthetic_arch", **_size)
dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="fad_synthetic_val", filter_empty=False),
    mapper=L(DatasetMapper)(
        is_train=False,
        augmentations=[L(T.ResizeShortestEdge)(short_edge_length=128, max_size=128)],
        image_format="BGR",
    ),
    num_workers=0,
)
dataloader.evaluator = L(COCOEvaluator)(dataset_name="${..test.dataset.names}")
for _split in ("train", "arch"):
    # Small in-process loaders: worker start-up would dominate a CPU run of a few iterations.
    dataloader[_split].num_workers = 0
