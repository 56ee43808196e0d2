"""The generator needs TensorFlow (a separate venv, see README.md): never import it under pytest."""

collect_ignore = ["make_models.py"]
