"""Regenerates `synthetic_rram_levels.csv`, the SYNTHETIC measured-device example.

The numbers are made up (see `mat_keras.devices.measured.synthetic_measurements`):
an RRAM-like device of 8 levels from 1 to 40 uS, 40 programming attempts per
level. They illustrate the CSV format and feed the tests; they are not
measurements of a real device.

Usage: python mat_keras/data/make_synthetic_levels.py [PATH]
"""

import os
import sys

from mat_keras.devices.measured import write_synthetic_csv

if __name__ == "__main__":
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "synthetic_rram_levels.csv")
    write_synthetic_csv(sys.argv[1] if len(sys.argv) > 1 else default, seed=0)
