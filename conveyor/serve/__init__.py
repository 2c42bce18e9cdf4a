"""Stage 6, serve: model files with manifests, batch inference with monitoring."""
