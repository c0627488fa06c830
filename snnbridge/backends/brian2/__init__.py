"""Internals of the Brian2 backend (:mod:`snnbridge.backends.brian2_backend`): the plan and the builder."""
