"""One training harness for every GAN stage: options locked on resume, runtime and optimizers, a compiled
train step over replicas, checkpoints with exact resume, CSV and TensorBoard logs, figures, and the loop.

A stage supplies a ``GanModule`` (networks, optimizers, named loss weights, metric names and a per-replica
``replica_step``) and a source of step-indexed batches; the harness does the rest the same way for all.
"""
