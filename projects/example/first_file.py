import scipy
import numpy

print("scipy", scipy.__version__, "numpy", numpy.__version__)
