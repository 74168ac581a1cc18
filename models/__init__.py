"""Model versions: training, safe artifact formats, digests and the BentoML model store."""
