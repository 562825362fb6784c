"""xsfm: xarray-native generative downscaling and data assimilation."""
