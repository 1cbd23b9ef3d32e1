"""Numerical kernels of lastlayer: pure functions of checked arrays, no validation.

- :mod:`~lastlayer._core.stats`: sufficient statistics (one accumulator for every
  data source), their centring, the covariance spectrum;
- :mod:`~lastlayer._core.ridge`: weighted ridge, primal (Cholesky / eigh from the
  statistics) and dual (n x n kernel);
- :mod:`~lastlayer._core.loo`: exact leave-one-out along an alpha path (one block
  kernel for in-memory, streaming and dask rows) and GCV from the statistics;
- :mod:`~lastlayer._core.logistic`: weighted multinomial logistic regression with
  approximate (ALO) and exact leave-one-out.

The checked public entry points are :mod:`lastlayer.solvers` and
:mod:`lastlayer.paths`; the fit pipeline (:mod:`lastlayer._fit`) calls the kernels
directly after validating once.
"""
