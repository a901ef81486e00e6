"""run-svc: runs, templates, studies, IDEs, pipelines and their executors."""
