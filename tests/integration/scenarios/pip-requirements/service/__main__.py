import cfxdemo_io
import cfxdemo_plot

print("service up:", cfxdemo_io.__version__, cfxdemo_plot.__version__)
