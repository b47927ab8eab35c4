"""One module per hardware family behind one `Robot` interface. Imports without torch."""
