"""Benchmarks: camlab against its peers (``peers``). They may import the dev extras (grad-cam,
torchcam); nothing in camlab imports this package."""
