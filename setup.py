"""flanjax: FLAN-style multitask instruction tuning of T5 in JAX."""
import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _gin_files():
  """All gin files under gin/, as package data of flanjax.gin (installed to flanjax/gin/)."""
  out = []
  for root, _, files in os.walk(os.path.join(HERE, "gin")):
    for f in files:
      if f.endswith(".gin"):
        out.append(os.path.relpath(os.path.join(root, f), os.path.join(HERE, "gin")))
  return sorted(out)


# Known-good pins (Python 3.11); see README "Dependencies".
CORE = [
    "jax==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "gin-config==0.5.0",
    "numpy",
    "tqdm",
    "filelock",  # JAX's persistent compilation cache (flanjax/compilation_cache.py) needs it
    "matplotlib",
    "tensorboardX",
    "safetensors",
    "rouge-score",
    "sacrebleu",
    "editdistance",  # T5's word edit distance (Fix Punctuation's FLAN metric)
    "msgpack",
]
DATA = [
    "seqio==0.0.20",
    "tensorflow==2.21.0",
    "tensorflow-text==2.21.1",
    "tensorflow-datasets==4.9.10",
    "sentencepiece==0.2.3",
]
HF = ["torch==2.13.0", "transformers"]

setup(
    name="flanjax",
    version="0.1.0",
    description="FLAN-style multitask instruction tuning of T5 encoder-decoders in JAX",
    long_description=open(os.path.join(HERE, "README.md")).read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=["flanjax", "flanjax.tasks", "flanjax.mixtures", "flanjax.gin"],
    package_dir={
        "flanjax": "flanjax",
        "flanjax.tasks": "tasks",
        "flanjax.mixtures": "mixtures",
        "flanjax.gin": "gin",
    },
    package_data={
        "flanjax": ["assets/*"],
        "flanjax.gin": _gin_files(),
    },
    install_requires=CORE + DATA,
    extras_require={
        "hf": HF,
        "dev": HF + ["pytest", "pytest-timeout", "ruff"],
        "gpu": ["jax[cuda12]==0.10.2"],
        "tpu": ["jax[tpu]==0.10.2"],
    },
    entry_points={"console_scripts": ["flanjax=flanjax.cli:main"]},
)
