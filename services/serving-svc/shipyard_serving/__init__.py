"""serving-svc: test inferences, the model catalog, deployments and model servers."""
