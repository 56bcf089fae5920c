"""A user's own pieces, as a module: what tests register in-process and what children and
the command line import with ``purenet --import tests/_pieces.py``."""

from __future__ import annotations

import numpy as np

import purenet as pn


def swish(Z):
    return Z / (1 + np.exp(-Z))


def swish_derivative(Z, A):
    s = 1 / (1 + np.exp(-Z))
    return s + A * (1 - s)


def log_cosh(A, y):
    d = A - y
    # log(cosh(d)) = |d| + log1p(exp(-2|d|)) - log 2: finite for any d.
    return (np.abs(d) + np.log1p(np.exp(-2 * np.abs(d))) - np.log(2)).sum(axis=1)


def log_cosh_gradient(A, y):
    return np.tanh(A - y)


def small_normal(rng, fan_in, fan_out):
    return rng.standard_normal((fan_in, fan_out)) * 0.05, np.zeros(fan_out)


PIECES = [("activation", "swish"), ("loss", "log_cosh"), ("initializer", "small_normal")]

pn.register_activation("swish", swish, swish_derivative)
pn.register_loss("log_cosh", log_cosh, log_cosh_gradient)
pn.register_initializer("small_normal", small_normal)
