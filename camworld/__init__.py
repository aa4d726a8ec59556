"""camworld: an open-source implementation of SANA-WM, a camera-controlled minute-scale video world model.

Layers, lowest first (a test enforces that no layer imports a higher one):
    errors, fileio, config, camera  ->  world, data (no model code)
    ops -> modules -> models -> flow / samplers -> pipeline -> train / eval / serve / cli
"""

__version__ = "0.1.0"
