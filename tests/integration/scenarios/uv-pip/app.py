import cfxdemo_core
import cfxdemo_plot

print("uv app:", cfxdemo_core.__version__, cfxdemo_plot.__version__)
