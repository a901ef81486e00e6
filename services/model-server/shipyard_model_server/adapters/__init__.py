"""The model server's adapters: predictors that load and run a model version's files."""
