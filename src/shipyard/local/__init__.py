"""Embedded mode: ``shipyard up`` runs the whole platform on this machine, supervised."""
