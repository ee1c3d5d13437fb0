"""flanjax: FLAN-style multitask instruction tuning of T5 encoder-decoders in JAX.

Importing `flanjax` is cheap and TensorFlow-free; the data side (`flanjax.pipeline`,
`flanjax.tasks`, `flanjax.mixtures`) imports TensorFlow and seqio when used.
"""
__version__ = "0.1.0"
