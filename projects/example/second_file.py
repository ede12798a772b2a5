import pandas
import sklearn

print("pandas", pandas.__version__, "scikit-learn", sklearn.__version__)
