"""The training harness behind `lrlab compare`: real small Transformers trained under lrlab schedules.

- `lrlab.bench.tasks`: built-in tasks (``lm`` on the Python standard library's source, ``vision`` on scikit-learn's
  digits) and loaders for user data (``text:PATH``, ``hf:NAME_OR_PATH``), with size presets ``tiny`` / ``small`` /
  ``base``.
- `lrlab.bench.model`: the tiny GPT and ViT, nanoGPT-plain.
- `lrlab.bench.train`: `TrainConfig`, `RunResult` and `train`, one readable loop with atomic checkpoints and exact
  resume.
- `lrlab.bench.compare` and `lrlab.bench.report`: the grid of runs and its report.

Importing this package imports nothing heavy; torch is imported by the modules that build models and train.
"""
