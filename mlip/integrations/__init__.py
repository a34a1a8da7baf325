"""Thin adapters to other tools, one module per tool, each the only place that calls it.

* :mod:`mlip.integrations.phonopy`: ASE <-> phonopy cells, force constants from the
  exact Hessian (symmetry-reduced Hessian-vector products), phonopy's displacement
  method as the reference, band structure / mesh / DOS / thermal properties as arrays;
* :mod:`mlip.integrations.sella`: Sella saddle searches and IRC with the analytic
  Hessian (optional: ``pip install -e .[ts]``);
* :mod:`mlip.integrations.torchsim`: a TorchSim ``ModelInterface`` for any mlip energy
  model (optional: ``pip install -e .[torchsim]``).

This layer sits above the calculator and MD (it wraps them) and below the workflows
and the command line. Importing the package imports none of the tools.
"""
