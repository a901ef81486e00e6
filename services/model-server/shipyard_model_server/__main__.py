"""Run the model server: ``python -m shipyard_model_server --model-dir DIR --model-name NAME --port PORT ...``
(see :mod:`shipyard_model_server.entrypoints.process`)."""

import sys

# The model server's own packages come with the ``model-server`` extra; a platform installed without it
# still starts replicas, and a replica's last words become the endpoint's failure: say what to install.
try:
    from shipyard_model_server.entrypoints.process import main
except ModuleNotFoundError as missing:
    if missing.name != "numpy":  # orjson and uvloop are optional, scikit-learn is imported per model
        raise
    sys.exit("the model server needs numpy, which is not installed: pip install 'shipyard[model-server]'")

if __name__ == "__main__":
    raise SystemExit(main())
