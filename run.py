"""The specification's entry point: python run.py -mode "update" | "inference" | "summary".

    python run.py -mode "update"                          # prints True or False
    python run.py -mode "inference" -file "./path_to.file" # prints the output file's path
    python run.py -mode "summary"                          # prints the report's path

Add -config PATH to use another config than ./conveyor.yaml.
"""

import sys

from conveyor.cli import run_py

if __name__ == "__main__":
    sys.exit(run_py())
