"""The Brian2 backend, one package (nothing here imports Brian2 at import time):

* :mod:`~snnbridge.backends.brian2.backend` — ``Brian2Backend`` (registry name ``brian2``) and its simulation;
* :mod:`~snnbridge.backends.brian2.plan` — the target-independent plan (groups, composed projections);
* :mod:`~snnbridge.backends.brian2.build` — Brian2 objects of a plan, for any device;
* :mod:`~snnbridge.backends.brian2.standalone` — the ``cpp_standalone`` target's cached builds;
* :mod:`~snnbridge.backends.brian2.native` — ``to_native``: a plain ``brian2.Network`` for the user;
* :mod:`~snnbridge.backends.brian2.patches` — every use of a Brian2 private, checked against its version.
"""
