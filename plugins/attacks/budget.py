"""The attack plugin contract: what an attack perturbs and within which limits.

An attack (kind ``attacks``) is built as ``factory(**params)`` and called as::

    deltas = attack(loss_fn, inputs, epsilon=eps, generator=g)

``inputs`` maps a name (an input field) to a :class:`PerturbationSpace`; the
attack returns one ``delta`` per name, of the space's shape, that *increases*
``loss_fn(deltas)`` (a per-sample loss ``[B]``, summed by the attack) while
staying inside the ``norm`` ball of radius ``epsilon * space.scale`` per
sample, inside the box ``[lower, upper]`` (valid pixel range expressed as
bounds on the delta) and zero where ``mask`` is zero (missing items, padding
tokens). Several names are attacked jointly, each in its own ball.

The types and helpers live in the public :mod:`polymodal.perturb`; they are
re-exported here for code written against this module.
"""

from __future__ import annotations

from polymodal.perturb import NORMS, Norm, PerturbationSpace, check_norm, per_sample_norm

__all__ = ["NORMS", "Norm", "PerturbationSpace", "check_norm", "per_sample_norm"]
