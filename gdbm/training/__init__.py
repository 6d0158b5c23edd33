"""Adversarial training of conditioners: config, energy prior, the trainer loop, checkpoints, logs."""
