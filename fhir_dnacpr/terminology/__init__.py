"""Code systems and value sets we use, and identifier checks (NHS number, ODS, GMC/NMC/HCPC)."""
