"""The ``.sfm`` accessor on :class:`xarray.DataArray` and :class:`xarray.Dataset`.

Thin by design: nothing is validated here; each method lists its parameters (so ``help()``,
Jupyter's Shift-Tab and sphinx show them) and is one call into a face: :func:`xsfm.downscaling.downscale`,
:func:`xsfm.assimilation.assimilate` or :func:`xsfm.assimilation.forecast`, plain functions tested
directly.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import xarray as xr

if TYPE_CHECKING:
    import torch

    from xsfm.model import Model
    from xsfm.observations import Observation

__all__ = ["SFMAccessor"]


class SFMAccessor:
    """Generative downscaling and data assimilation on CF-annotated xarray objects."""

    def __init__(self, obj: xr.DataArray | xr.Dataset) -> None:
        self._obj = obj

    def downscale(
        self,
        model: str | Model | None = None,
        members: int = 16,
        steps: int | None = None,
        seed: int = 0,
        device: str | None = None,
        batch_size: int | None = None,
        *,
        variables: Mapping[str, str] | None = None,
        regrid: str | None = None,
        solver: str | None = None,
        progress: bool | None = None,
        dtype: str | None = None,
        **sample_kwargs: Any,
    ) -> xr.Dataset:
        """Downscale to the model's fine grid as an ensemble; see :func:`xsfm.downscaling.downscale`.

        Examples
        --------
        >>> import xsfm
        >>> coarse = xsfm.load_model("interpolation").example_input()
        >>> fine = coarse.sfm.downscale(model="interpolation", members=2)
        >>> fine.sizes["member"], fine.sizes["x"] == 4 * coarse.sizes["x"]
        (2, True)
        """
        from xsfm.downscaling import downscale

        return downscale(
            self._obj,
            model=model,
            members=members,
            steps=steps,
            seed=seed,
            device=device,
            batch_size=batch_size,
            variables=variables,
            regrid=regrid,
            solver=solver,
            progress=progress,
            dtype=dtype,
            **sample_kwargs,
        )

    def assimilate(
        self,
        obs: xr.DataArray | xr.Dataset,
        model: str | Model | None = None,
        members: int | None = None,
        operator: Observation
        | dict[str, Any]
        | Callable[[torch.Tensor], torch.Tensor]
        | None = None,
        noise_std: float | None = None,
        steps: int | None = None,
        guidance: dict[str, Any] | str | None = None,
        seed: int = 0,
        *,
        method: str = "flowdas",
        transition: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        particles: int | None = None,
        state_dims: Sequence[Hashable] | None = None,
        time_dim: str = "time",
        time_step: Any = None,
        member_dim: str = "member",
        resample_members: bool | str | None = None,
        inflation: float = 1.0,
        rotate: bool = False,
        localisation: float | None = None,
        period: float | None = None,
        regularisation: float = 0.0,
        resample_threshold: float | None = None,
        device: str | None = None,
        progress: bool | None = None,
        **guidance_options: Any,
    ) -> xr.Dataset:
        """Assimilate ``obs`` forward from this state (or initial ensemble); see :func:`xsfm.assimilation.assimilate`.

        Examples
        --------
        >>> import xsfm
        >>> ds = xsfm.datasets.lorenz63(trajectories=2, steps=2, burn_in=64)
        >>> ana = ds.state.isel(time=[0]).sfm.assimilate(ds.obs, members=2, steps=20)
        >>> ana["state"].sizes["member"], ana["time"].values.tolist()
        (2, [1, 2])
        """
        from xsfm.assimilation import assimilate

        return assimilate(
            self._obj,
            obs,
            model=model,
            members=members,
            operator=operator,
            noise_std=noise_std,
            steps=steps,
            guidance=guidance,
            seed=seed,
            method=method,
            transition=transition,
            particles=particles,
            state_dims=state_dims,
            time_dim=time_dim,
            time_step=time_step,
            member_dim=member_dim,
            resample_members=resample_members,
            inflation=inflation,
            rotate=rotate,
            localisation=localisation,
            period=period,
            regularisation=regularisation,
            resample_threshold=resample_threshold,
            device=device,
            progress=progress,
            **guidance_options,
        )

    def forecast(
        self,
        model: str | Model | None = None,
        lead: int = 15,
        members: int | None = None,
        seed: int = 0,
        *,
        steps: int | None = None,
        time_dim: str = "time",
        time_step: Any = None,
        member_dim: str = "member",
        device: str | None = None,
        progress: bool | None = None,
    ) -> xr.Dataset:
        """Unguided probabilistic rollout from this state; see :func:`xsfm.assimilation.forecast`.

        Examples
        --------
        >>> import xsfm
        >>> ds = xsfm.datasets.lorenz63(trajectories=2, steps=2, burn_in=64)
        >>> fc = ds.state.isel(time=[0]).sfm.forecast(lead=3, members=2, steps=20)
        >>> fc["time"].values.tolist()
        [1, 2, 3]
        """
        from xsfm.forecasting import forecast

        return forecast(
            self._obj,
            model=model,
            lead=lead,
            members=members,
            seed=seed,
            steps=steps,
            time_dim=time_dim,
            time_step=time_step,
            member_dim=member_dim,
            device=device,
            progress=progress,
        )


xr.register_dataarray_accessor("sfm")(SFMAccessor)
xr.register_dataset_accessor("sfm")(SFMAccessor)
