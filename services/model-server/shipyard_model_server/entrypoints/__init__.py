"""The model server's entrypoints: the HTTP application and the process around it."""
