"""Train a potential: ``python train.py [CONFIG.yaml] [--key value ...]`` == ``mlip train ...``.

Data parallel: ``torchrun --nproc_per_node N train.py ...``. See ``mlip train --help``.
"""

import sys

from mlip.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
