"""snnbridge: define a spiking network once, carry it through NIR to snnTorch, Norse and Brian2,
and prove that the simulators agree."""

__version__ = "0.2.0"
