"""FAD-D2: FAD (ECCV 2020) fast object-detector architecture search, as a detectron2 project."""

from setuptools import find_packages, setup

setup(
    name="fad",
    version="0.1.0",
    description="Representation-sharing detector head search (FAD, ECCV 2020) on detectron2",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["fad", "fad.*"]),
    package_data={"fad": ["genotypes/*.log"]},  # the paper's genotypes (fad.genotypes)
    # detectron2 is installed from its public source (see README): it is on no package index,
    # so it cannot be declared here. The NAS core (fad.nas, fad.genotypes) works without it.
    # matplotlib draws alphas.png (its Figure API, no pyplot: it sets no global backend).
    install_requires=["torch>=2.5", "numpy", "Pillow", "graphviz>=0.20", "matplotlib>=3.7"],
    extras_require={
        # onnx and onnxruntime: export_model.py --format onnx and its tests
        "dev": [
            "pytest>=7",
            "pytest-xdist",
            "ruff>=0.4",
            "tensorboard",
            "fvcore",
            "onnx",
            "onnxruntime",
        ],
    },
)
