"""Transfers into Spotfire: query results from other systems streamed into the library."""
