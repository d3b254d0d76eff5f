"""Features: the 179-indicator catalog as Numba kernels over all symbols at once.

Importing this package changes nothing outside it; where Numba keeps the compiled kernels
is set by `features.cache.configure_numba_cache()`, which each program calls at start.
"""
