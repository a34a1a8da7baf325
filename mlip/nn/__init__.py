"""Neural-network building blocks: geometry, radial bases, interaction blocks."""
