"""augment: transforms and recipes that generate targeted training data (audio and image)."""
