"""Networks, number formats and the integer-exact golden models the hardware must match."""
