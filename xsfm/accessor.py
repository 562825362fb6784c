"""The ``.sfm`` accessor on :class:`xarray.DataArray` and :class:`xarray.Dataset`.

Thin by design: nothing is validated here; each method is one call into :mod:`xsfm.downscaling` (downscaling) or
:mod:`xsfm.assimilation` (assimilation and forecasts), which are plain functions tested directly.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

__all__ = ["SFMAccessor"]


class SFMAccessor:
    """Generative downscaling and data assimilation on CF-annotated xarray objects."""

    def __init__(self, obj: xr.DataArray | xr.Dataset) -> None:
        self._obj = obj

    def downscale(self, model: Any = None, members: int = 16, **kwargs: Any) -> xr.Dataset:
        """Downscale to the model's fine grid; see :func:`xsfm.downscaling.downscale`.

        Examples
        --------
        >>> import xsfm
        >>> coarse = xsfm.load_model("interpolation").example_input()
        >>> fine = coarse.sfm.downscale(model="interpolation", members=2)
        >>> fine.sizes["member"], fine.sizes["x"] == 4 * coarse.sizes["x"]
        (2, True)
        """
        from xsfm.downscaling import downscale

        return downscale(self._obj, model=model, members=members, **kwargs)

    def assimilate(
        self, obs: Any, model: Any = None, members: int = 8, **kwargs: Any
    ) -> xr.Dataset:
        """Assimilate observations from this initial state; see :func:`xsfm.assimilation.assimilate`."""
        from xsfm.assimilation import assimilate

        return assimilate(self._obj, obs, model=model, members=members, **kwargs)

    def forecast(
        self, model: Any = None, lead: int = 15, members: int = 8, **kwargs: Any
    ) -> xr.Dataset:
        """Unguided probabilistic rollout; see :func:`xsfm.assimilation.forecast`."""
        from xsfm.assimilation import forecast

        return forecast(self._obj, model=model, lead=lead, members=members, **kwargs)


xr.register_dataarray_accessor("sfm")(SFMAccessor)
xr.register_dataset_accessor("sfm")(SFMAccessor)
