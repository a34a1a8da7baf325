"""Names of the fields of a batch of atomic graphs.

A batch is a plain ``dict[str, torch.Tensor]`` holding one or more systems
(molecules or periodic cells) concatenated atom-wise.  Units: Angstrom, eV, amu.
Shapes use ``n_atoms`` (all atoms of the batch), ``n_systems`` and ``n_edges``.

Edge convention: ``edge_index[0]`` is the centre atom ``i`` (the receiver),
``edge_index[1]`` the neighbour ``j`` (the sender); the edge vector is

    r_ij = positions[j] - positions[i] + edge_shifts[e] @ cell[batch[i]]

so a message flows from ``j`` to ``i``.
"""

from __future__ import annotations

# --- inputs -----------------------------------------------------------------
POSITIONS = "positions"  # (n_atoms, 3) float, Angstrom
ATOMIC_NUMBERS = "atomic_numbers"  # (n_atoms,) int64
BATCH = "batch"  # (n_atoms,) int64, index of the system each atom belongs to
NUM_ATOMS = "num_atoms"  # (n_systems,) int64
CELL = "cell"  # (n_systems, 3, 3) float, lattice vectors as rows; zeros if no cell
PBC = "pbc"  # (n_systems, 3) bool
EDGE_INDEX = "edge_index"  # (2, n_edges) int64, [centre i, neighbour j]
EDGE_SHIFTS = "edge_shifts"  # (n_edges, 3) float, integer cell-shift multiples
# Optional marker (an empty tensor; its presence is the flag): the edges come in pairs, the
# second half the reverses of the first in the same order, edge n_edges/2 + k being
# (j, i, -S) of edge k = (i, j, S). r_ji = -r_ij, so a model may compute its edge features
# on the first half only (radial ones equal, spherical harmonics Y_l(-r) = (-1)^l Y_l(r)).
EDGES_PAIRED = "edges_paired"
# Optional, for one system that is a domain of a larger one (mlip.integrations.lammps):
# (H + 1,) int64 on the host; hop_counts[h] = the number of atoms within h message-passing
# hops of the first hop_counts[0] atoms, the atoms being ordered by that hop distance.
# Only the energies of those first hop_counts[0] atoms are wanted: a model may skip work
# that cannot reach them (layer t of L needs atoms within L - t hops) and report zero
# NODE_ENERGY for the others.
HOP_COUNTS = "hop_counts"

# --- labels and predictions -------------------------------------------------
ENERGY = "energy"  # (n_systems,) float, eV (total energy)
NODE_ENERGY = "node_energy"  # (n_atoms,) float, eV (per-atom contributions)
FORCES = "forces"  # (n_atoms, 3) float, eV/Angstrom, -dE/dR
STRESS = "stress"  # (n_systems, 3, 3) float, eV/Angstrom^3 (ASE sign convention)
VIRIAL = "virial"  # (n_systems, 3, 3) float, eV, -dE/d(strain)
# Hessians of all systems, flattened block by block: system s contributes its
# (3 N_s, 3 N_s) atom-major block d2E/dR dR (eV/Angstrom^2) in row-major order.
HESSIAN = "hessian"  # (sum_s (3 N_s)^2,) float, eV/Angstrom^2
# Rows of selected atoms i of the batch-wide Hessian, (3k, 3 n_atoms), eV/Angstrom^2: row
# 3m + a is d(dE/dR_{i_m, a})/dR (zero outside the system of atom i_m)
HESSIAN_ROWS = "hessian_rows"
# Hessian-vector products H_s v_s for one probe vector v_s per system, (n_atoms, 3), eV/A^2*A
HESSIAN_PROBED = "hessian_probed"
# committees (mlip.committee): the energy of each member and, from
# derivatives.compute(..., members=True), the forces of each member
MEMBER_ENERGY = "member_energy"  # (n_members, n_systems) float, eV
MEMBER_FORCES = "member_forces"  # (n_members, n_atoms, 3) float, eV/Angstrom

# --- label masks (which systems carry which label) --------------------------
HAS_FORCES = "has_forces"  # (n_systems,) bool
HAS_STRESS = "has_stress"  # (n_systems,) bool
HAS_HESSIAN = "has_hessian"  # (n_systems,) bool

# --- bookkeeping --------------------------------------------------------------
SAMPLE_INDEX = "sample_index"  # (n_systems,) int64, index of each system in its dataset
