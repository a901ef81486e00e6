"""The model server's pure layer: the V2 protocol's tensors, requests and responses."""
