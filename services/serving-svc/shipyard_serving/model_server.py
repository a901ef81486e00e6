"""The model server process: ``python -m shipyard_serving.model_server --model-dir DIR --model-name NAME
--port PORT ...`` (see :mod:`shipyard_serving.entrypoints.model_server`)."""

from shipyard_serving.entrypoints.model_server import main

if __name__ == "__main__":
    raise SystemExit(main())
