"""Built-in attacks plugins (each its own entry point).

An attack factory takes its parameters (``norm``, ``steps`` ...) and returns a
callable ``attack(loss_fn, inputs, epsilon=..., generator=...) -> deltas``
(see :mod:`polymodal_plugins.attacks.budget`). An attack class declares
``iterative`` (True: it takes ``steps``, ``step_size`` and ``random_start``),
which the adversarial axis reads. Nothing here imports torch.
"""

from polymodal import component

fgsm = component("attacks", "fgsm", "polymodal_plugins.attacks.gradient:FGSM",
                 description="Fast gradient (sign) method: one step of size epsilon, L-inf or L2.")
pgd = component("attacks", "pgd", "polymodal_plugins.attacks.gradient:PGD",
                description="Projected gradient descent: steps, step size, random start, L-inf or L2.")
