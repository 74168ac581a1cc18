"""The BentoML service that serves one model version: predict, feedback, health, metrics."""
