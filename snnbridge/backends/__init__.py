"""One adapter per simulator behind one interface: ``get(name).compile(graph, ...).run(inputs) -> Recording``.

Built in: ``reference``, ``snntorch``, ``norse``, ``brian2`` and the audit modes
``snntorch-upstream`` / ``norse-upstream`` (the simulators' own NIR importers, as a user would call them).
"""

from snnbridge.backends.base import NATIVE_LIBRARIES, Backend, Simulation, get, names, native_library, register, status


def _lazy(module: str, cls: str):
    def factory():
        import importlib

        return getattr(importlib.import_module(module), cls)()

    return factory


register("reference", _lazy("snnbridge.backends.reference", "ReferenceBackend"))
register("snntorch", _lazy("snnbridge.backends.snntorch_backend", "SnnTorchBackend"))
register("norse", _lazy("snnbridge.backends.norse_backend", "NorseBackend"))
register("brian2", _lazy("snnbridge.backends.brian2.backend", "Brian2Backend"))
register("snntorch-upstream", _lazy("snnbridge.backends.upstream", "SnnTorchUpstream"))
register("norse-upstream", _lazy("snnbridge.backends.upstream", "NorseUpstream"))
register("spikingjelly", _lazy("snnbridge.backends.spikingjelly_backend", "SpikingJellyBackend"))
register("spikingjelly-upstream", _lazy("snnbridge.backends.upstream_more", "SpikingJellyUpstream"))
register("rockpool", _lazy("snnbridge.backends.rockpool_backend", "RockpoolBackend"))
register("rockpool-upstream", _lazy("snnbridge.backends.upstream_more", "RockpoolUpstream"))
register("sinabs", _lazy("snnbridge.backends.sinabs_backend", "SinabsBackend"))

__all__ = ["NATIVE_LIBRARIES", "Backend", "Simulation", "get", "names", "native_library", "register", "status"]
