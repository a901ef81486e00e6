"""The gateway: the one public entry. Authenticates, authorizes, validates and forwards;
owns identity (users, roles, API tokens) and nothing else."""
