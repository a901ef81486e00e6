"""The model server: one model version over the Open Inference Protocol (KServe V2) on HTTP, a process
of its own that serving-svc starts per replica (and KServe runs as a custom container). Users'
models run in it; it needs the ``model-server`` extra (numpy, scikit-learn, orjson, uvloop)."""
