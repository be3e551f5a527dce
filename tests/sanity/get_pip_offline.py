"""Stand-in for the get-pip bootstrap script ansible-test downloads from a host this
network cannot reach. ansible-test runs it in a fresh venv with pip install arguments;
it installs pip with ensurepip, then passes the arguments on to pip (from PyPI).
`make sanity` copies it into ansible-test's cache before running `ansible-test sanity --venv`."""
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
