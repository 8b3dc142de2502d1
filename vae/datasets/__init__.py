"""Data sets by name, as torchvision's `datasets` package: a registry and one module per source.

    from vae.datasets import load_dataset
    dataset = load_dataset("mnist5k")  # train/test images (N, C, H, W) float32 in [0, 1], labels (N,)

- `registry`: `Dataset`, `register`, `load_dataset` (cached), the data folder.
- `names`: names with an argument, `folder:PATH?size=&color=` and `upload:KEY`, parsed and built.
- `decode`: the one image decoder (a file to float pixels), shared with the Upload & draw page.
- one module per source, each registering its names on import, in this order (the Train page's):
  `embedded` (mnist5k, digits), `shapes`, `torchvision_sets` (mnist, fashion-mnist, kmnist,
  cifar10), `folder`, `uploads` (students' pictures; storing them is vae.student_data's).
"""

# Imported for their registrations, in the order the Train page lists them.
from vae.datasets import embedded, shapes, torchvision_sets, folder, uploads  # noqa: F401
from vae.datasets.names import FOLDER_COLORS, FOLDER_SIZES, folder_dataset_name, parse_folder_argument
from vae.datasets.registry import (DEFAULT_DATASET, REGISTRY, DataError, Dataset, canonical_request, dataset_names,
                                   default_data_dir, find_entry, load_dataset, register)

__all__ = ["DEFAULT_DATASET", "REGISTRY", "DataError", "Dataset", "canonical_request", "dataset_names",
           "default_data_dir", "find_entry", "load_dataset", "register", "FOLDER_COLORS", "FOLDER_SIZES",
           "folder_dataset_name", "parse_folder_argument"]
