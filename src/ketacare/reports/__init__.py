"""Documents and exports generated from KetaCare data and knowledge."""
