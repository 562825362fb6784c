"""The xarray layer: CF discovery, units, grids, prepare (xarray -> rows) and label (rows -> Dataset).

Works on model cards (plain data) and xarray objects; never imports torch. Every face (downscaling,
assimilation, training) goes through it.
"""
