"""The pure maths: records, activations, losses, initializers, randomness, the network."""
