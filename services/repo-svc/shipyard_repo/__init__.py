"""repo-svc: projects, code, datasets, feature sets, models and their versions."""
