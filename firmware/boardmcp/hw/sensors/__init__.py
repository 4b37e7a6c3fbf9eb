"""One module per sensor part; see boardmcp.hw for their common shape."""
