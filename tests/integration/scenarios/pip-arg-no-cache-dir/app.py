import cfxdemo_core
import cfxdemo_plot

print("core", cfxdemo_core.__version__, "plot", cfxdemo_plot.__version__)
