"""Pretrained weights of the model zoo (see ``make.py`` for how they were made)."""
