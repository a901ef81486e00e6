"""The standard images: one per framework and version, with the platform, read-only.

Each runs on the platform's Python locally (its requirements installed in an environment of its
own); its URL is what a cluster executor runs. Frameworks without an official container image
(scikit-learn, xgboost) name the Python base image, their requirements installed on top. To offer
one more version, add a line to ``STANDARD_IMAGES``.
"""

from __future__ import annotations

from shipyard.kit.environments import platform_python

from .images import Image, ImageSource, version_key

_SCIENCE = ("numpy", "scipy", "pandas", "matplotlib", "joblib")
_TENSORS = ("numpy", "pandas", "matplotlib")
PYTHON_URL = f"python:{platform_python()}-slim"


def _standard(name: str, framework: str, version: str, url: str, description: str,
              *requirements: str) -> Image:
    return Image(name=name, url=url, description=description, framework=framework,
                 framework_version=version, requirements=requirements, source=ImageSource.STANDARD)


def _sklearn(version: str, *pins: str) -> Image:
    return _standard(f"sklearn-{version}", "sklearn", version, PYTHON_URL,
                     f"scikit-learn {version} with NumPy, SciPy, pandas, Matplotlib and joblib.",
                     f"scikit-learn=={version}.*", *pins, *_SCIENCE)


def _tensorflow(version: str, tag: str) -> Image:
    return _standard(f"tensorflow-{version}", "tensorflow", version, f"tensorflow/tensorflow:{tag}",
                     f"TensorFlow {version} (with Keras) and NumPy, pandas and Matplotlib.",
                     f"tensorflow=={version}.*", *_TENSORS)


def _pytorch(version: str, tag: str) -> Image:
    return _standard(f"pytorch-{version}", "pytorch", version, f"pytorch/pytorch:{tag}",
                     f"PyTorch {version} and NumPy, pandas and Matplotlib.", f"torch=={version}.*", *_TENSORS)


def _xgboost(version: str) -> Image:
    return _standard(f"xgboost-{version}", "xgboost", version, PYTHON_URL,
                     f"XGBoost {version} with scikit-learn, pandas and NumPy.",
                     f"xgboost=={version}.*", "scikit-learn", "pandas", "numpy")


STANDARD_IMAGES: tuple[Image, ...] = (
    _standard("python", "custom", "", PYTHON_URL,
              f"Python {platform_python()} and nothing else: what a run naming no image or framework gets."),
    # The newest is the platform's own (the model server's): its models serve as they were trained.
    _sklearn("1.9"),
    _sklearn("1.8"),
    _sklearn("1.5"),
    _sklearn("1.4"),
    _sklearn("1.3", "numpy<2"),  # scikit-learn 1.3 was built against NumPy 1
    _tensorflow("2.21", "2.21.0"),
    _tensorflow("2.17", "2.17.0"),
    _tensorflow("2.16", "2.16.1"),
    _pytorch("2.5", "2.5.1-cuda12.4-cudnn9-runtime"),
    _pytorch("2.4", "2.4.1-cuda12.4-cudnn9-runtime"),
    _xgboost("3.2"),
    _xgboost("2.1"),
)
"""The catalog's standard images, in the order a list shows them."""

_BY_NAME = {image.name: image for image in STANDARD_IMAGES}
DEFAULT_IMAGE = _BY_NAME["python"]


def standard_image(name: str) -> Image | None:
    """The standard image of that name, if there is one."""
    return _BY_NAME.get(name)


def standard_versions(framework: str) -> list[Image]:
    """The standard images of a framework, newest version first."""
    found = [image for image in STANDARD_IMAGES if image.framework == framework]
    return sorted(found, key=lambda image: version_key(image.framework_version), reverse=True)
