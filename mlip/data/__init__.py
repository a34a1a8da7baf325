"""Data layer: HDF5 datasets, conversion, structures and graphs."""
