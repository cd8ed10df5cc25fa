"""The training harness behind `lrlab compare` and `lrlab train`: real small Transformers trained under lrlab
schedules, and the comparison that ranks the schedules. Which module answers which question:
docs/architecture.md; how it works: docs/harness.md.

Importing this package imports nothing heavy; torch is imported by the modules that build models and train.
"""
