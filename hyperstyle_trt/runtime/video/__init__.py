"""Face inversion on videos (issue #22): frame I/O, face tracking, temporal smoothing of the alignment, stability
metrics, a synthetic test clip and the per-frame workflow. Import the submodules directly (nothing is imported
eagerly here, so ``av`` / ``dlib`` load only where they are used)."""
