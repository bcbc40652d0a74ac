"""PyTorch training code for the project's BERT checkpoints (see train.py)."""
